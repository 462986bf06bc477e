//! The transport floor of this machine: a bare axum + hyper server on the same tokio runtime
//! medpdp uses, with no middleware, no decision and no log. `scripts/bench-floor.sh` drives it
//! and `medpdp serve` with the same load, so the share of a request's time that is medpdp's
//! own (layers, JSON, decision) can be told apart from loopback and HTTP.
//!
//! ```sh
//! cargo run --release --example http_floor -- [ADDR]
//! ```
//!
//! Routes: `GET /static` (a fixed JSON answer), `POST /static` (reads the body, answers the
//! same) and `POST /busy/{us}` (as `POST /static`, after keeping the core busy for `us` µs, a
//! stand-in for a decision of known cost). Default address 127.0.0.1:18080.
#![allow(clippy::print_stdout, clippy::expect_used, reason = "a command-line tool: fail loudly")]

use axum::body::Bytes;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use std::time::{Duration, Instant};

use axum::extract::Path;
use axum::routing::{get, post};
use axum::serve::ListenerExt;
use axum::Router;

const ANSWER: &str = r#"{"decision":"deny","reasons":[],"errors":[]}"#;

async fn fixed() -> impl IntoResponse {
    ([(CONTENT_TYPE, "application/json")], ANSWER)
}

async fn read_body(body: Bytes) -> impl IntoResponse {
    std::hint::black_box(body.len());
    fixed().await
}

/// Reads the body, then keeps the core busy for `us` microseconds: a stand-in for a decision
/// of known cost, to see what a busy server pays on top of it.
async fn busy(Path(us): Path<u64>, body: Bytes) -> impl IntoResponse {
    std::hint::black_box(body.len());
    let until = Instant::now() + Duration::from_micros(us);
    while Instant::now() < until {
        std::hint::spin_loop();
    }
    fixed().await
}

fn main() {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:18080".to_owned());
    // As `medpdp serve`: a multi-thread runtime sized by the CPUs the process may use.
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    runtime.block_on(async {
        let app = Router::new()
            .route("/static", get(fixed).post(read_body))
            .route("/busy/{us}", post(busy));
        // As `medpdp serve`: Nagle off, so a small answer leaves at once.
        let listener = tokio::net::TcpListener::bind(&addr).await.expect("bind").tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        println!("http_floor listening on http://{addr}/static");
        axum::serve(listener, app).await.expect("serve");
    });
}
