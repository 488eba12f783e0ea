//! `switchyard`: the command people run. `switchyard dataplane …` runs the
//! dataplane (the control plane starts itself that way as its child).

use clap::Parser;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use switchyard_controlplane::config::{Args, Config};
use switchyard_controlplane::http::{AppState, router};
use switchyard_controlplane::supervisor::{Dataplane, supervise};
use switchyard_controlplane::tls::{self, TlsFiles};

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1).peekable();
    if args.peek().map(String::as_str) == Some("dataplane") {
        args.next();
        return switchyard_dataplane::runtime::main_with_args(args);
    }
    let config = match Config::load(Args::parse()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("switchyard: {e}");
            return ExitCode::from(2);
        }
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&config.log));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("switchyard: starting the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(config: Config) -> Result<(), String> {
    let dataplane = Arc::new(Dataplane::default());
    let stop = Arc::new(AtomicBool::new(false));
    let supervisor = {
        let (mode, log, dp, stop) = (
            config.dataplane.clone(),
            config.log.clone(),
            dataplane.clone(),
            stop.clone(),
        );
        std::thread::Builder::new()
            .name("sy-supervisor".into())
            .spawn(move || supervise(mode, log, dp, stop))
            .map_err(|e| format!("starting the supervisor: {e}"))?
    };
    let listener = tokio::net::TcpListener::bind(config.http)
        .await
        .map_err(|e| format!("binding HTTP {}: {e}", config.http))?;
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
        let host = if a.ip().is_unspecified() {
            SocketAddr::new(config.advertise[0], a.port())
        } else {
            a
        };
        banner.push_str(&format!("switchyard: or https://{host}/"));
        if files.self_signed {
            banner.push_str(&format!(
                " (self-signed certificate {})",
                files.cert.display()
            ));
        }
        banner.push('\n');
    }
    // whoever started us may have stopped reading stdout: never fail on it
    let _ = std::io::Write::write_all(&mut std::io::stdout(), banner.as_bytes());
    let _ = std::io::Write::flush(&mut std::io::stdout());
    let tokens = config.tokens.policy()?;
    let signalling = switchyard_controlplane::server::Signalling::new(
        dataplane.clone(),
        switchyard_controlplane::server::RoomSettings {
            advertise: config.advertise.clone(),
            limits: config.limits,
            tokens,
            last_n: config.last_n,
        },
    );
    let pump = {
        let (s, stop) = (signalling.clone(), stop.clone());
        std::thread::Builder::new()
            .name("sy-pump".into())
            .spawn(move || s.pump(&stop))
            .map_err(|e| format!("starting the pump: {e}"))?
    };
    let state = Arc::new(AppState {
        dataplane,
        signalling,
        load: std::sync::Mutex::new(switchyard_controlplane::load::LoadMeter::new(
            config.worker_capacity_pps,
        )),
    });
    tokio::spawn(switchyard_controlplane::http::sample_load(state.clone()));
    let app = router(state);
    let (stopping, mut stopped) = tokio::sync::watch::channel(false);
    let tls_handle = axum_server::Handle::new();
    tokio::spawn({
        let tls_handle = tls_handle.clone();
        async move {
            shutdown_signal().await;
            tls_handle.graceful_shutdown(Some(std::time::Duration::from_secs(5)));
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
                .serve(app.into_make_service())
                .await
        })
    });
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            let _ = stopped.wait_for(|s| *s).await;
        })
        .await;
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
        supervisor.join()
    })
    .await;
    tracing::info!("switchyard stopped");
    served.map_err(|e| format!("HTTP server: {e}"))
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

async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = term => {},
    }
    tracing::info!("shutting down");
}
