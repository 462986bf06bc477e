//! Policy-set slices: for every (principal, action, resource) class a request can fall into, a
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
//! - principal/resource `== E`: the entity must be `E` (so these policies are only in the cells
//!   of `E` itself; this keeps one-off grants and template links out of everyone else's slice);
//! - principal/resource `is T`, `is T in E`: the entity's type must be `T`;
//! - principal/resource `in E` and unconstrained scopes: nothing about the type (an entity of any
//!   type may be a member of `E`), so such policies are in every cell of that dimension;
//! - action `== A`: the action must be `A`; action `in A` / `in [A, …]`: the action must be one
//!   of the listed uids or a descendant of one in the resident store's action hierarchy (action
//!   groups), which is exactly how Cedar evaluates `in` against the store.
//!
//! A principal or resource is looked up by uid (if some `==` names it), else by type (if some
//! `is` names it), else falls into the "other" column, which holds only the policies
//! unconstrained in that dimension; actions no constraint can match share an "other" row of
//! action-unconstrained policies. A request for an undeclared type or action thus never falls
//! into an empty set by mistake.
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

/// Limits on the index: beyond them a finer level is abandoned for a coarser one (see
/// [`Level`]), which bounds load time and memory for workspaces with very many types or
/// `==` constraints.
const MAX_CELLS: usize = 1 << 16;
const MAX_SETS: usize = 4096;

/// Pre-built policy sets indexed by what a request names.
#[derive(Debug, Default)]
pub(crate) struct PolicySlices {
    /// Action uid -> row (1-based; row 0 holds actions no constraint can match).
    actions: HashMap<EntityUid, usize>,
    principals: Dimension,
    resources: Dimension,
    /// Cell -> index into `sets`.
    cells: Vec<u32>,
    /// Distinct slices.
    sets: Vec<PolicySet>,
}

/// What a principal or resource scope constraint requires of the entity.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Filter {
    /// Unconstrained, or `in E` (any type may be a member of `E`).
    Any,
    /// `is T`, `is T in E`: this type.
    Type(EntityTypeName),
    /// `== E`: this entity.
    Uid(EntityUid),
}

/// How finely the principal and resource dimensions are indexed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    /// By entity for `==` constraints, else by type.
    Uids,
    /// By type (`== E` counts as `is type(E)`).
    Types,
    /// Not at all (every policy in the single column).
    Off,
}

/// The columns of one dimension (principal or resource).
#[derive(Debug, Default)]
struct Dimension {
    /// Entities named by `==` constraints -> column.
    uids: HashMap<EntityUid, usize>,
    /// Types named by `is` constraints -> column.
    types: HashMap<EntityTypeName, usize>,
    /// Number of columns; column 0 holds entities of types no constraint names.
    cols: usize,
    /// Policies that can match, per column.
    bits: Vec<Bits>,
}

impl Dimension {
    fn build(filters: &[Filter], words: usize, level: Level) -> Self {
        let mut dim = Dimension { cols: 1, ..Dimension::default() };
        for f in filters {
            match (f, level) {
                (Filter::Uid(u), Level::Uids) if !dim.uids.contains_key(u) => {
                    dim.uids.insert(u.clone(), dim.cols);
                    dim.cols += 1;
                }
                (Filter::Type(t), Level::Uids | Level::Types) if !dim.types.contains_key(t) => {
                    dim.types.insert(t.clone(), dim.cols);
                    dim.cols += 1;
                }
                (Filter::Uid(u), Level::Types) if !dim.types.contains_key(u.type_name()) => {
                    dim.types.insert(u.type_name().clone(), dim.cols);
                    dim.cols += 1;
                }
                _ => {}
            }
        }
        let mut bits = vec![Bits::new(words); dim.cols];
        for (i, f) in filters.iter().enumerate() {
            match (f, level) {
                (Filter::Any, _) => bits.iter_mut().for_each(|b| b.set(i)),
                (_, Level::Off) => bits[0].set(i),
                (Filter::Type(t), _) => {
                    // Type column, and the columns of entities of that type.
                    dim.types.get(t).into_iter().for_each(|&c| bits[c].set(i));
                    for (u, &c) in &dim.uids {
                        if u.type_name() == t {
                            bits[c].set(i);
                        }
                    }
                }
                (Filter::Uid(u), Level::Uids) => {
                    dim.uids.get(u).into_iter().for_each(|&c| bits[c].set(i));
                }
                (Filter::Uid(u), Level::Types) => {
                    dim.types.get(u.type_name()).into_iter().for_each(|&c| bits[c].set(i));
                }
            }
        }
        dim.bits = bits;
        dim
    }

    /// The column of an entity.
    fn column(&self, uid: &EntityUid) -> usize {
        if self.uids.is_empty() {
            return self.types.get(uid.type_name()).copied().unwrap_or(0);
        }
        self.uids.get(uid).or_else(|| self.types.get(uid.type_name())).copied().unwrap_or(0)
    }
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
        let p_filters: Vec<Filter> =
            list.iter().map(|p| principal_filter(p.principal_constraint())).collect();
        let r_filters: Vec<Filter> =
            list.iter().map(|p| resource_filter(p.resource_constraint())).collect();
        let a_constraints: Vec<ActionConstraint> =
            list.iter().map(|p| p.action_constraint()).collect();
        let words = list.len().div_ceil(64);
        let actions = action_keys(&a_constraints, entities, schema);
        let a_bits = action_bits(&actions, &a_constraints, entities, words);

        for level in [Level::Uids, Level::Types, Level::Off] {
            let principals = Dimension::build(&p_filters, words, level);
            let resources = Dimension::build(&r_filters, words, level);
            let cell_count = a_bits.len() * principals.cols * resources.cols;
            if cell_count > MAX_CELLS && level != Level::Off {
                continue;
            }
            let mut distinct: HashMap<Bits, u32> = HashMap::new();
            let mut order: Vec<&Bits> = Vec::new();
            let mut cells = Vec::with_capacity(cell_count);
            let mut combined = Vec::with_capacity(cell_count);
            for a in &a_bits {
                for p in &principals.bits {
                    let ap = a.and(p);
                    for r in &resources.bits {
                        combined.push(ap.and(r));
                    }
                }
            }
            for bits in &combined {
                let next = u32::try_from(distinct.len()).ok()?;
                let index = *distinct.entry(bits.clone()).or_insert(next);
                if index == next {
                    order.push(bits);
                }
                cells.push(index);
            }
            if order.len() > MAX_SETS && level != Level::Off {
                continue;
            }
            let sets = order
                .into_iter()
                .map(|bits| slice_set(policies, &list, bits))
                .collect::<Option<Vec<_>>>()?;
            return Some(Self {
                actions: actions.into_iter().enumerate().map(|(i, k)| (k, i + 1)).collect(),
                principals,
                resources,
                cells,
                sets,
            });
        }
        None
    }

    /// The slice for a request, or `None` when no slices were built.
    pub(crate) fn get(
        &self,
        principal: &EntityUid,
        action: &EntityUid,
        resource: &EntityUid,
    ) -> Option<&PolicySet> {
        let a = self.actions.get(action).copied().unwrap_or(0);
        let p = self.principals.column(principal);
        let r = self.resources.column(resource);
        let cell = (a * self.principals.cols + p) * self.resources.cols + r;
        let set = *self.cells.get(cell)?;
        self.sets.get(usize::try_from(set).ok()?)
    }

    /// Number of distinct slices and the size of the largest.
    pub(crate) fn stats(&self) -> (usize, usize) {
        let largest = self.sets.iter().map(|s| s.policies().count()).max().unwrap_or(0);
        (self.sets.len(), largest)
    }
}

fn principal_filter(c: PrincipalConstraint) -> Filter {
    match c {
        PrincipalConstraint::Any | PrincipalConstraint::In(_) => Filter::Any,
        PrincipalConstraint::Eq(uid) => Filter::Uid(uid),
        PrincipalConstraint::Is(ty) | PrincipalConstraint::IsIn(ty, _) => Filter::Type(ty),
    }
}

fn resource_filter(c: ResourceConstraint) -> Filter {
    match c {
        ResourceConstraint::Any | ResourceConstraint::In(_) => Filter::Any,
        ResourceConstraint::Eq(uid) => Filter::Uid(uid),
        ResourceConstraint::Is(ty) | ResourceConstraint::IsIn(ty, _) => Filter::Type(ty),
    }
}

/// Row bitsets: row 0 holds action-unconstrained policies, row k those that can match the
/// action `actions[k - 1]`.
fn action_bits(
    actions: &[EntityUid],
    constraints: &[ActionConstraint],
    entities: &Entities,
    words: usize,
) -> Vec<Bits> {
    let mut rows = vec![Bits::new(words); actions.len() + 1];
    for (row, uid) in std::iter::once(None).chain(actions.iter().map(Some)).enumerate() {
        let ancestors: HashSet<&EntityUid> = match uid {
            Some(uid) => entities.ancestors(uid).into_iter().flatten().collect(),
            None => HashSet::new(),
        };
        for (i, c) in constraints.iter().enumerate() {
            let can_match = match (c, uid) {
                (ActionConstraint::Any, _) => true,
                (_, None) => false,
                (ActionConstraint::Eq(a), Some(uid)) => a == uid,
                (ActionConstraint::In(list), Some(uid)) => {
                    list.iter().any(|a| a == uid || ancestors.contains(a))
                }
            };
            if can_match {
                rows[row].set(i);
            }
        }
    }
    rows
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

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(set: &PolicySet) -> Vec<String> {
        let mut v: Vec<String> =
            set.policies().filter_map(|p| p.annotation("id")).map(String::from).collect();
        v.sort();
        v
    }

    #[test]
    fn slices_keep_exactly_the_policies_whose_scope_can_match() {
        let policies: PolicySet = r#"
            @id("eq") permit (principal == User::"a", action, resource);
            @id("is") permit (principal is User, action == Action::"read", resource);
            @id("group") permit (principal in Group::"g", action in Action::"readers", resource);
            @id("doc") forbid (principal, action, resource is Doc);
        "#
        .parse()
        .unwrap();
        let entities = Entities::from_json_str(
            r#"[{"uid": {"type": "Action", "id": "read"}, "attrs": {},
                 "parents": [{"type": "Action", "id": "readers"}]}]"#,
            None,
        )
        .unwrap();
        let slices = PolicySlices::build(&policies, &entities, None).unwrap();
        let get = |p: &str, a: &str, r: &str| {
            ids(slices.get(&p.parse().unwrap(), &a.parse().unwrap(), &r.parse().unwrap()).unwrap())
        };
        let read = r#"Action::"read""#;
        assert_eq!(get(r#"User::"a""#, read, r#"Doc::"d""#), ["doc", "eq", "group", "is"]);
        assert_eq!(get(r#"User::"b""#, read, r#"Doc::"d""#), ["doc", "group", "is"]);
        assert_eq!(get(r#"User::"b""#, r#"Action::"write""#, r#"Doc::"d""#), ["doc"]);
        assert_eq!(get(r#"Zed::"z""#, read, r#"Zed::"y""#), ["group"]);
        assert!(get(r#"Zed::"z""#, r#"Action::"other""#, r#"Zed::"y""#).is_empty());
    }
}
