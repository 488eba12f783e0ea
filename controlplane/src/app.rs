//! The control plane as a whole: what `switchyard` runs, and what tests
//! and tools run in their own process.

use crate::config::{Config, Role};
use crate::http::{AppState, router};
use crate::supervisor::{Dataplane, supervise};
use crate::tls::{self, TlsFiles};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// How the process is told to stop: the first signal drains, a second one
/// stops at once.
pub struct Shutdown {
    signals: tokio::sync::watch::Receiver<u32>,
}

impl Shutdown {
    /// Counts SIGTERM and SIGINT.
    pub fn on_signals() -> Shutdown {
        let (tx, signals) = tokio::sync::watch::channel(0u32);
        tokio::spawn(async move {
            use tokio::signal::unix::{SignalKind, signal};
            let (Ok(mut term), Ok(mut int)) = (
                signal(SignalKind::terminate()),
                signal(SignalKind::interrupt()),
            ) else {
                tracing::error!("cannot install signal handlers");
                return;
            };
            loop {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
                tx.send_modify(|n| *n += 1);
            }
        });
        Shutdown { signals }
    }

    /// Driven by the caller: each send of a higher count is one more signal.
    pub fn manual() -> (tokio::sync::watch::Sender<u32>, Shutdown) {
        let (tx, signals) = tokio::sync::watch::channel(0u32);
        (tx, Shutdown { signals })
    }

    /// Resolves at the `n`th signal (never, if the sender is gone first).
    pub(crate) async fn signal(&self, n: u32) {
        let mut rx = self.signals.clone();
        if rx.wait_for(|&c| c >= n).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// Runs the control plane: the supervisor (or an attached dataplane),
/// signalling, HTTP and HTTPS. At the first signal of `shutdown` it drains
/// (`/health` 503, joins refused with `draining`, participants told with
/// `going_away`), waits up to `drain_timeout` for the rooms to empty, closes
/// what is left with code 1001, stops both listeners within 5 s and then
/// the dataplane; a second signal cuts the wait short. `listener` is the
/// bound HTTP listener; the first line printed on stdout names its URL.
pub async fn serve(
    config: Config,
    listener: tokio::net::TcpListener,
    shutdown: Shutdown,
) -> Result<(), String> {
    let dataplane = Arc::new(Dataplane::default());
    let stop = Arc::new(AtomicBool::new(false));
    // a focus has no dataplane of its own: its bridges have
    let local = config.role == Role::All;
    let supervisor = if local {
        Some(start_supervisor(&config, &dataplane, &stop)?)
    } else {
        None
    };
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let https = match config.https {
        Some(at) => Some(https_listener(&config, at)?),
        None => None,
    };
    let mut banner = format!(
        "switchyard {}: open http://{addr}/\n",
        env!("CARGO_PKG_VERSION")
    );
    if let Some((l, files, _)) = &https {
        let a = l.local_addr().map_err(|e| e.to_string())?;
        banner.push_str(&format!("switchyard: or https://{}/", public(a, &config)));
        if files.self_signed {
            banner.push_str(&format!(
                " (self-signed certificate {})",
                files.cert.display()
            ));
        }
        banner.push('\n');
    }
    let warnings = config.warnings();
    for w in &warnings {
        tracing::warn!(target: "switchyard::config", "{w}");
        banner.push_str(&format!("switchyard: WARNING: {w}\n"));
    }
    // whoever started us may have stopped reading stdout: never fail on it
    let _ = std::io::Write::write_all(&mut std::io::stdout(), banner.as_bytes());
    let _ = std::io::Write::flush(&mut std::io::stdout());
    let tokens = config.tokens.policy()?;
    let shard = {
        let url = match (&config.shard.url, &https) {
            (Some(u), _) => u.clone(),
            (None, Some((l, _, _))) => {
                let a = l.local_addr().map_err(|e| e.to_string())?;
                format!("wss://{}/ws", public(a, &config))
            }
            (None, None) => format!("ws://{}/ws", public(addr, &config)),
        };
        let registry = config
            .shard
            .registry
            .open()
            .map_err(|e| format!("--registry: {e}"))?;
        // (bridges that find this shard in the registry link here; only
        // where the cluster secret opens /cluster)
        let cluster = config.cluster_secret.as_ref().map(|_| {
            config
                .shard
                .cluster_url
                .clone()
                .unwrap_or_else(|| format!("ws://{}/cluster", public(addr, &config)))
        });
        Arc::new(crate::shard::Shard::new(
            config.shard.id.clone(),
            url,
            cluster,
            registry,
        ))
    };
    tracing::info!(target: "switchyard::shard", shard = shard.id(), registry = %shard.registry_name(), "shard");
    let signalling = crate::server::Signalling::new(
        local.then(|| dataplane.clone()),
        crate::server::RoomSettings {
            advertise: config.advertise.clone(),
            limits: config.limits,
            tokens,
            last_n: config.last_n,
            resume_grace: config.resume_grace,
            placement: config.placement,
            trusted_proxies: config.trusted_proxies.clone(),
            turn: config.turn.clone(),
        },
        config.cluster_secret.clone(),
        shard,
    );
    tokio::spawn(refresh_shard(signalling.clone()));
    let pump = {
        let (s, stop) = (signalling.clone(), stop.clone());
        std::thread::Builder::new()
            .name("sy-pump".into())
            .spawn(move || s.pump(&stop))
            .map_err(|e| format!("starting the pump: {e}"))?
    };
    let signalling_for_drain = signalling.clone();
    let state = Arc::new(AppState {
        dataplane,
        signalling,
        load: std::sync::Mutex::new(crate::load::LoadMeter::new(config.worker_capacity_pps)),
        auth: config.tokens.mode(),
        role: if local { "all" } else { "focus" },
        warnings,
    });
    tokio::spawn(crate::http::sample_load(state.clone()));
    let app = router(state);
    let (stopping, mut stopped) = tokio::sync::watch::channel(false);
    let tls_handle = axum_server::Handle::new();
    tokio::spawn({
        let tls_handle = tls_handle.clone();
        let drain_timeout = config.drain_timeout;
        async move {
            shutdown.signal(1).await;
            drain(&signalling_for_drain, drain_timeout, shutdown.signal(2)).await;
            tls_handle.graceful_shutdown(Some(LISTENER_GRACE));
            let _ = stopping.send(true);
        }
    });
    let secure = https.map(|(listener, _, config)| {
        let app = app.clone();
        let handle = tls_handle.clone();
        tokio::spawn(async move {
            axum_server::from_tcp(listener)?
                .acceptor(axum_server::tls_openssl::OpenSSLAcceptor::new(config))
                .handle(handle)
                .serve(app.into_make_service_with_connect_info::<SocketAddr>())
                .await
        })
    });
    // The plain listener's graceful shutdown waits for every connection;
    // like HTTPS's it gets LISTENER_GRACE, then the rest are cut.
    let mut stop_wait = stopped.clone();
    let plain = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        let _ = stopped.wait_for(|s| *s).await;
    });
    let served = tokio::select! {
        r = plain => r,
        _ = async {
            let _ = stop_wait.wait_for(|s| *s).await;
            tokio::time::sleep(LISTENER_GRACE).await;
        } => {
            tracing::info!("HTTP connections still open after the grace period: closed");
            Ok(())
        }
    };
    if let Some(task) = secure {
        match task.await {
            Ok(Err(e)) => tracing::error!("HTTPS server: {e}"),
            Err(e) => tracing::error!("HTTPS server: {e}"),
            Ok(Ok(())) => {}
        }
    }
    stop.store(true, Ordering::Relaxed);
    let _ = tokio::task::spawn_blocking(move || {
        let _ = pump.join();
        supervisor.map(std::thread::JoinHandle::join)
    })
    .await;
    tracing::info!("switchyard stopped");
    served.map_err(|e| format!("HTTP server: {e}"))
}

/// A listener's address as others reach it: an unspecified address is
/// replaced by the first advertised one.
fn public(a: SocketAddr, config: &Config) -> SocketAddr {
    if a.ip().is_unspecified() {
        SocketAddr::new(config.advertise[0], a.port())
    } else {
        a
    }
}

/// Keeps this shard's room claims and records in the registry fresh, every
/// [`crate::shard::REFRESH`], for as long as the process runs.
async fn refresh_shard(signalling: Arc<crate::server::Signalling>) {
    let mut tick = tokio::time::interval(crate::shard::REFRESH);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let snapshot = signalling.shard_snapshot();
        signalling
            .shard()
            .refresh(std::time::Instant::now(), snapshot)
            .await;
    }
}

/// Starts the thread that runs (or attaches to) the dataplane and keeps it
/// running until `stop`.
pub fn start_supervisor(
    config: &Config,
    dataplane: &Arc<Dataplane>,
    stop: &Arc<AtomicBool>,
) -> Result<std::thread::JoinHandle<()>, String> {
    let (mode, log, dp, stop) = (
        config.dataplane.clone(),
        config.log.clone(),
        dataplane.clone(),
        stop.clone(),
    );
    std::thread::Builder::new()
        .name("sy-supervisor".into())
        .spawn(move || supervise(mode, log, dp, stop))
        .map_err(|e| format!("starting the supervisor: {e}"))
}

/// How long the listeners wait for open connections once draining is over.
const LISTENER_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// Drains: tells everyone, waits until the rooms are empty, `timeout`
/// passes or `now` resolves (a second signal), then closes what is left.
async fn drain(
    signalling: &crate::server::Signalling,
    timeout: std::time::Duration,
    now: impl std::future::Future<Output = ()>,
) {
    signalling.begin_drain("the server is shutting down", timeout);
    let empty = async {
        while signalling.counts().1 > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    };
    tokio::select! {
        _ = empty => tracing::info!("rooms empty: stopping"),
        _ = tokio::time::sleep(timeout) => tracing::info!("drain timeout: stopping"),
        _ = now => tracing::info!("second signal: stopping now"),
    }
    signalling.close_all();
    // the close frames leave before the listeners stop
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
}

/// Binds the HTTPS listener and loads (or first generates) its certificate.
fn https_listener(
    config: &Config,
    at: SocketAddr,
) -> Result<
    (
        std::net::TcpListener,
        TlsFiles,
        axum_server::tls_openssl::OpenSSLConfig,
    ),
    String,
> {
    let mut names = config.advertise.clone();
    names.push(at.ip());
    let files = tls::prepare(&config.tls, &names)?;
    let tls_config =
        axum_server::tls_openssl::OpenSSLConfig::from_pem_chain_file(&files.cert, &files.key)
            .map_err(|e| {
                format!(
                    "loading the HTTPS certificate {} and key {}: {e}",
                    files.cert.display(),
                    files.key.display()
                )
            })?;
    let listener =
        std::net::TcpListener::bind(at).map_err(|e| format!("binding HTTPS {at}: {e}"))?;
    Ok((listener, files, tls_config))
}
