//! Policy-set slices: for every (principal type, action, resource type) a request can name, a
//! pre-built `PolicySet` holding only the policies whose scope can match it.
//!
//! Cedar evaluates every policy of the set it is given, and a policy whose scope cannot match
//! still costs about as much as a cheap policy that does. Scope constraints (`==`, `in`, `is`)
//! never raise errors and are checked before the `when`/`unless` conditions, so a policy whose
//! scope is false for a request contributes nothing to Cedar's answer: no decision, no reason,
//! no error. Leaving it out of the set is therefore exact, and that is the only thing slicing
//! does: it leaves out policies whose scope is *provably* false for every request of the cell.
//!
//! What each scope constraint says about a request:
//! - principal/resource `== E`, `is T`, `is T in E`: the entity's type must be `type(E)` or `T`;
//! - principal/resource `in E` and unconstrained scopes: nothing about the type (an entity of any
//!   type may be a member of `E`), so such policies are in every cell of that dimension;
//! - action `== A`: the action must be `A`; action `in A` / `in [A, …]`: the action must be one
//!   of the listed uids or a descendant of one in the resident store's action hierarchy (action
//!   groups), which is exactly how Cedar evaluates `in` against the store.
//!
//! Types and actions that no constraint names share one "other" cell per dimension, holding only
//! the policies unconstrained in that dimension; a request for an undeclared type or action thus
//! never falls into an empty set by mistake.
//!
//! INVARIANT: slices are exact only for the resident entity store they were built from. A
//! request that brings its own entities may change the action hierarchy, so it is evaluated
//! against the full set (see `decide`).
//!
//! Linked policies are sliced on their linked scope (Cedar resolves the slots); a slice that
//! holds a link also holds its template.

use std::collections::{HashMap, HashSet};

use cedar_policy::{
    ActionConstraint, Entities, EntityTypeName, EntityUid, Policy, PolicySet, PrincipalConstraint,
    ResourceConstraint, Schema,
};

/// Above this many cells the principal and resource dimensions are dropped (slicing by action
/// only), which bounds load time and memory for workspaces with very many types.
const MAX_CELLS: usize = 1 << 16;

/// Pre-built policy sets indexed by what a request names.
#[derive(Debug, Default)]
pub(crate) struct PolicySlices {
    /// Action uid -> row (1-based; row 0 holds actions no constraint can match).
    actions: HashMap<EntityUid, usize>,
    /// Principal type -> column (1-based; column 0 holds types no constraint names).
    principals: HashMap<EntityTypeName, usize>,
    /// Resource type -> column (1-based; 0 as above).
    resources: HashMap<EntityTypeName, usize>,
    /// Number of principal columns (including 0).
    p_cols: usize,
    /// Number of resource columns (including 0).
    r_cols: usize,
    /// Cell -> index into `sets`.
    cells: Vec<u32>,
    /// Distinct slices.
    sets: Vec<PolicySet>,
}

/// What a principal or resource scope constraint requires of the entity's type.
#[derive(Debug, Clone, PartialEq, Eq)]
enum TypeFilter {
    Any,
    Only(EntityTypeName),
}

impl PolicySlices {
    /// Builds the slices of `policies` for the resident `entities`; `None` if Cedar refuses to
    /// assemble a slice (not expected for a set that loaded).
    pub(crate) fn build(
        policies: &PolicySet,
        entities: &Entities,
        schema: Option<&Schema>,
    ) -> Option<Self> {
        let list: Vec<&Policy> = policies.policies().collect();
        let p_filters: Vec<TypeFilter> =
            list.iter().map(|p| principal_filter(p.principal_constraint())).collect();
        let r_filters: Vec<TypeFilter> =
            list.iter().map(|p| resource_filter(p.resource_constraint())).collect();
        let a_constraints: Vec<ActionConstraint> =
            list.iter().map(|p| p.action_constraint()).collect();

        let actions = action_keys(&a_constraints, entities, schema);
        let mut principals = type_keys(&p_filters);
        let mut resources = type_keys(&r_filters);
        let a_rows = actions.len() + 1;
        let mut typed = true;
        if a_rows * (principals.len() + 1) * (resources.len() + 1) > MAX_CELLS {
            principals.clear();
            resources.clear();
            typed = false;
        }
        let (p_cols, r_cols) = (principals.len() + 1, resources.len() + 1);

        let words = list.len().div_ceil(64);
        let mut a_bits = vec![Bits::new(words); a_rows];
        for (row, uid) in std::iter::once(None).chain(actions.iter().map(Some)).enumerate() {
            let ancestors: HashSet<&EntityUid> = match uid {
                Some(uid) => entities.ancestors(uid).into_iter().flatten().collect(),
                None => HashSet::new(),
            };
            for (i, c) in a_constraints.iter().enumerate() {
                let can_match = match (c, uid) {
                    (ActionConstraint::Any, _) => true,
                    (_, None) => false,
                    (ActionConstraint::Eq(a), Some(uid)) => a == uid,
                    (ActionConstraint::In(list), Some(uid)) => {
                        list.iter().any(|a| a == uid || ancestors.contains(a))
                    }
                };
                if can_match {
                    a_bits[row].set(i);
                }
            }
        }
        let p_bits = type_bits(&p_filters, &principals, words, typed);
        let r_bits = type_bits(&r_filters, &resources, words, typed);

        let mut distinct: HashMap<Bits, u32> = HashMap::new();
        let mut sets = Vec::new();
        let mut cells = Vec::with_capacity(a_rows * p_cols * r_cols);
        for a in &a_bits {
            for p in &p_bits {
                let ap = a.and(p);
                for r in &r_bits {
                    let bits = ap.and(r);
                    let index = match distinct.get(&bits) {
                        Some(&index) => index,
                        None => {
                            let index = u32::try_from(sets.len()).unwrap_or(u32::MAX);
                            sets.push(slice_set(policies, &list, &bits)?);
                            distinct.insert(bits, index);
                            index
                        }
                    };
                    cells.push(index);
                }
            }
        }
        let index = |keys: Vec<EntityTypeName>| {
            keys.into_iter().enumerate().map(|(i, k)| (k, i + 1)).collect::<HashMap<_, _>>()
        };
        Some(Self {
            actions: actions.into_iter().enumerate().map(|(i, k)| (k, i + 1)).collect(),
            principals: index(principals),
            resources: index(resources),
            p_cols,
            r_cols,
            cells,
            sets,
        })
    }

    /// The slice for a request, or `None` when no slices were built.
    pub(crate) fn get(
        &self,
        principal: &EntityTypeName,
        action: &EntityUid,
        resource: &EntityTypeName,
    ) -> Option<&PolicySet> {
        let a = self.actions.get(action).copied().unwrap_or(0);
        let p = self.principals.get(principal).copied().unwrap_or(0);
        let r = self.resources.get(resource).copied().unwrap_or(0);
        let cell = (a * self.p_cols + p) * self.r_cols + r;
        let set = *self.cells.get(cell)?;
        self.sets.get(usize::try_from(set).ok()?)
    }

    /// Number of distinct slices and the size of the largest.
    pub(crate) fn stats(&self) -> (usize, usize) {
        let largest = self.sets.iter().map(|s| s.policies().count()).max().unwrap_or(0);
        (self.sets.len(), largest)
    }
}

fn principal_filter(c: PrincipalConstraint) -> TypeFilter {
    match c {
        PrincipalConstraint::Any | PrincipalConstraint::In(_) => TypeFilter::Any,
        PrincipalConstraint::Eq(uid) => TypeFilter::Only(uid.type_name().clone()),
        PrincipalConstraint::Is(ty) | PrincipalConstraint::IsIn(ty, _) => TypeFilter::Only(ty),
    }
}

fn resource_filter(c: ResourceConstraint) -> TypeFilter {
    match c {
        ResourceConstraint::Any | ResourceConstraint::In(_) => TypeFilter::Any,
        ResourceConstraint::Eq(uid) => TypeFilter::Only(uid.type_name().clone()),
        ResourceConstraint::Is(ty) | ResourceConstraint::IsIn(ty, _) => TypeFilter::Only(ty),
    }
}

/// Types named by type filters, in first-seen order.
fn type_keys(filters: &[TypeFilter]) -> Vec<EntityTypeName> {
    let mut keys: Vec<EntityTypeName> = Vec::new();
    for f in filters {
        if let TypeFilter::Only(t) = f {
            if !keys.contains(t) {
                keys.push(t.clone());
            }
        }
    }
    keys
}

/// Column bitsets: column 0 holds type-unconstrained policies (all policies when the dimension
/// is not sliced), column k those unconstrained or constrained to `keys[k - 1]`.
fn type_bits(
    filters: &[TypeFilter],
    keys: &[EntityTypeName],
    words: usize,
    typed: bool,
) -> Vec<Bits> {
    let mut cols = vec![Bits::new(words); keys.len() + 1];
    for (i, f) in filters.iter().enumerate() {
        match f {
            TypeFilter::Any => cols.iter_mut().for_each(|c| c.set(i)),
            TypeFilter::Only(_) if !typed => cols[0].set(i),
            TypeFilter::Only(t) => {
                if let Some(k) = keys.iter().position(|k| k == t) {
                    cols[k + 1].set(i);
                }
            }
        }
    }
    cols
}

/// Every action uid a request may name that some action constraint can match: the uids the
/// constraints list, the schema's actions, and every stored entity that descends from a uid
/// listed in an `in` constraint (requests may name any entity as the action when there is no
/// schema).
fn action_keys(
    constraints: &[ActionConstraint],
    entities: &Entities,
    schema: Option<&Schema>,
) -> Vec<EntityUid> {
    let mut keys: Vec<EntityUid> = Vec::new();
    let mut seen: HashSet<EntityUid> = HashSet::new();
    let mut push = |uid: &EntityUid, keys: &mut Vec<EntityUid>| {
        if seen.insert(uid.clone()) {
            keys.push(uid.clone());
        }
    };
    let mut groups: HashSet<&EntityUid> = HashSet::new();
    for c in constraints {
        match c {
            ActionConstraint::Any => {}
            ActionConstraint::Eq(a) => push(a, &mut keys),
            ActionConstraint::In(list) => {
                for a in list {
                    push(a, &mut keys);
                    groups.insert(a);
                }
            }
        }
    }
    if let Some(schema) = schema {
        for a in schema.actions() {
            push(a, &mut keys);
        }
    }
    if !groups.is_empty() {
        for e in entities.iter() {
            let uid = e.uid();
            let member = entities
                .ancestors(&uid)
                .is_some_and(|mut ancestors| ancestors.any(|a| groups.contains(a)));
            if member {
                push(&uid, &mut keys);
            }
        }
    }
    keys
}

/// A policy set holding the policies `bits` selects from `list` (and the templates of the
/// linked ones).
fn slice_set(full: &PolicySet, list: &[&Policy], bits: &Bits) -> Option<PolicySet> {
    let mut set = PolicySet::new();
    for (i, policy) in list.iter().enumerate() {
        if !bits.get(i) {
            continue;
        }
        match (policy.template_id(), policy.template_links()) {
            (Some(template_id), Some(links)) => {
                if set.template(template_id).is_none() {
                    if let Some(template) = full.template(template_id) {
                        set.add_template(template.clone()).ok()?;
                    }
                }
                set.link(template_id.clone(), policy.id().clone(), links).ok()?;
            }
            _ => set.add((*policy).clone()).ok()?,
        }
    }
    Some(set)
}

/// A fixed-size bitset over policy positions.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Bits(Vec<u64>);

impl Bits {
    fn new(words: usize) -> Self {
        Self(vec![0; words])
    }

    fn set(&mut self, i: usize) {
        if let Some(w) = self.0.get_mut(i / 64) {
            *w |= 1 << (i % 64);
        }
    }

    fn get(&self, i: usize) -> bool {
        self.0.get(i / 64).is_some_and(|w| w & (1 << (i % 64)) != 0)
    }

    fn and(&self, other: &Self) -> Self {
        Self(self.0.iter().zip(&other.0).map(|(a, b)| a & b).collect())
    }
}
