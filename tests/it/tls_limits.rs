//! Slow, silent and too many clients cannot hold the server: handshake, header-read, idle and
//! request timeouts close them, and the connection cap makes further clients wait.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::TestServer;

const GET_LIVE: &[u8] = b"GET /health/live HTTP/1.1\r\nHost: localhost\r\n\r\n";

/// Reads until the peer closes (or `limit` passes); returns what was read and how long it took.
async fn read_until_closed(s: &mut TcpStream, limit: Duration) -> (String, Duration) {
    let start = Instant::now();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match tokio::time::timeout_at((start + limit).into(), s.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
            Err(_) => {
                panic!("connection still open after {limit:?}: {}", String::from_utf8_lossy(&buf))
            }
        }
    }
    (String::from_utf8_lossy(&buf).into_owned(), start.elapsed())
}

fn plain_addr(t: &TestServer) -> String {
    t.base.trim_start_matches("http://").to_owned()
}

#[tokio::test]
async fn a_client_that_never_finishes_the_handshake_is_dropped() {
    let t = TestServer::start_tls("urn:medpdp:admin:a", |c| c.tls.handshake_timeout_ms = 300).await;
    let mut s = TcpStream::connect(t.tls_addr()).await.unwrap();
    let (_, took) = read_until_closed(&mut s, Duration::from_secs(5)).await;
    assert!(took >= Duration::from_millis(250), "closed too early: {took:?}");
    t.stop().await;
}

#[tokio::test]
async fn a_client_that_never_finishes_its_headers_is_dropped() {
    let t = TestServer::start_fixture("tests/fixtures/med5g-mini", |c| {
        c.server.header_read_timeout_ms = 300;
    })
    .await;
    // Half a request line, then silence.
    let mut s = TcpStream::connect(plain_addr(&t)).await.unwrap();
    s.write_all(b"GET /health/li").await.unwrap();
    let (_, took) = read_until_closed(&mut s, Duration::from_secs(5)).await;
    assert!(took < Duration::from_secs(2), "header-read timeout did not apply: {took:?}");
    t.stop().await;
}

#[tokio::test]
async fn idle_connections_and_slow_requests_are_closed() {
    let t = TestServer::start_fixture("tests/fixtures/med5g-mini", |c| {
        c.server.header_read_timeout_ms = 30_000;
        c.server.idle_timeout_secs = 2;
        c.server.request_timeout_secs = 1;
    })
    .await;
    // One request, then an idle keep-alive connection: closed by the idle timeout.
    let mut s = TcpStream::connect(plain_addr(&t)).await.unwrap();
    s.write_all(GET_LIVE).await.unwrap();
    let (out, took) = read_until_closed(&mut s, Duration::from_secs(10)).await;
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    assert!(took >= Duration::from_millis(1900) && took < Duration::from_secs(5), "{took:?}");

    // A body that never arrives: 408 after the request timeout.
    let mut s = TcpStream::connect(plain_addr(&t)).await.unwrap();
    s.write_all(
        b"POST /v1/decide HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"princ",
    )
    .await
    .unwrap();
    let (out, _) = read_until_closed(&mut s, Duration::from_secs(10)).await;
    assert!(out.starts_with("HTTP/1.1 408"), "{out}");
    assert!(out.contains("request_timeout"), "{out}");
    t.stop().await;
}

#[tokio::test]
async fn beyond_the_connection_cap_clients_wait_their_turn() {
    let t =
        TestServer::start_fixture("tests/fixtures/med5g-mini", |c| c.server.max_connections = 1)
            .await;
    let mut first = TcpStream::connect(plain_addr(&t)).await.unwrap();
    first.write_all(GET_LIVE).await.unwrap();
    let mut buf = [0u8; 1024];
    let n = first.read(&mut buf).await.unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
    // The second client connects (the kernel queues it) but is not served ...
    let mut second = TcpStream::connect(plain_addr(&t)).await.unwrap();
    second.write_all(GET_LIVE).await.unwrap();
    let waited = tokio::time::timeout(Duration::from_millis(300), second.read(&mut buf)).await;
    assert!(waited.is_err(), "served beyond the cap");
    // ... until the first one leaves.
    drop(first);
    let n =
        tokio::time::timeout(Duration::from_secs(5), second.read(&mut buf)).await.unwrap().unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&buf[..n]));
    t.stop().await;
}
