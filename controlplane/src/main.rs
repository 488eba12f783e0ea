//! `switchyard`: the command people run. `switchyard dataplane …` runs the
//! dataplane (the control plane starts itself that way as its child).

use clap::Parser;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use switchyard_controlplane::config::{Args, Config};
use switchyard_controlplane::http::{AppState, router};
use switchyard_controlplane::supervisor::{Dataplane, supervise};

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
    println!(
        "switchyard {}: open http://{addr}/",
        env!("CARGO_PKG_VERSION")
    );
    let advertise = config.advertise;
    let signalling = switchyard_controlplane::server::Signalling::new(
        dataplane.clone(),
        advertise,
        Default::default(),
    );
    let pump = {
        let (s, stop) = (signalling.clone(), stop.clone());
        std::thread::Builder::new()
            .name("sy-pump".into())
            .spawn(move || s.pump(&stop))
            .map_err(|e| format!("starting the pump: {e}"))?
    };
    let app = router(Arc::new(AppState {
        dataplane,
        signalling,
    }));
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await;
    stop.store(true, Ordering::Relaxed);
    let _ = tokio::task::spawn_blocking(move || {
        let _ = pump.join();
        supervisor.join()
    })
    .await;
    tracing::info!("switchyard stopped");
    served.map_err(|e| format!("HTTP server: {e}"))
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
