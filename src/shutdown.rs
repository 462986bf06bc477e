//! Process signals: the shutdown signal (SIGINT or SIGTERM, whichever comes first), and
//! SIGXFSZ kept from killing the process.

/// Resolves when the process is asked to stop.
pub async fn signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}

/// Keeps SIGXFSZ from killing the process: when a file size limit (`RLIMIT_FSIZE`, `ulimit -f`)
/// is reached, the write fails with `EFBIG` instead, which the decision log treats like a full
/// disk (503, not ready, retried) rather than losing the service. Must be called inside a
/// tokio runtime; the handler stays installed for the life of the process.
pub fn survive_file_size_limit() {
    #[cfg(unix)]
    {
        let kind = tokio::signal::unix::SignalKind::from_raw(libc::SIGXFSZ);
        match tokio::signal::unix::signal(kind) {
            Ok(mut s) => {
                tokio::spawn(async move {
                    while s.recv().await.is_some() {
                        tracing::warn!(
                            "a file size limit (RLIMIT_FSIZE) refused a write; see the decision log status"
                        );
                    }
                });
            }
            Err(e) => tracing::warn!(
                "cannot handle SIGXFSZ ({e}): a file size limit would stop the process"
            ),
        }
    }
}
