//! sluice-console: the local web console — watch, trigger, cancel and redrive jobs in a
//! browser, what the Step Functions and ECS consoles are on AWS.
//!
//! It serves pages (server-side HTML from askama templates, a little JS that polls the JSON API
//! for live updates) and the JSON API under `/api/` that the pages use and scripts may use too.
//! It runs inside a `sluice` process that has a [`LocalRuntime`] open on a work directory —
//! `sluice serve --ui ADDR` or `sluice ui` — and reads that runtime's job table and work
//! directory. Its actions go through the same code as the CLI's: trigger writes the upload into
//! the inbox and ingests it like a dropped file ([`sluice_local::inbox`]), cancel and redrive are
//! [`LocalRuntime::cancel`] and [`LocalRuntime::redrive`].
//!
//! - [`security`]: loopback by default, a token elsewhere, CSRF, security headers.
//! - [`views`]: what is shown, read from the job table and the work directory.
//! - [`graph`]: the state machine as an SVG graph with each state's status.
//! - [`trigger`]: uploads and pipeline variants.
//! - [`api`] and [`pages`]: the routes.
//!
//! See docs/console.md for the pages, the API and the security model.

pub mod api;
pub mod error;
pub mod graph;
pub mod pages;
pub mod security;
pub mod trigger;
pub mod views;

use anyhow::Context;
use axum::Router;
use sluice_core::JobId;
use sluice_local::LocalRuntime;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::mpsc::UnboundedSender;

pub use error::ApiError;
pub use security::Access;

/// Default address: loopback only.
pub const DEFAULT_ADDR: &str = "127.0.0.1:8080";
/// Default largest upload: 64 MiB.
pub const DEFAULT_UPLOAD_LIMIT: usize = 64 * 1024 * 1024;

/// A job this console started or redrove, so that the process hosting it (serve) can follow
/// it like its own.
#[derive(Debug, Clone, PartialEq)]
pub struct Started {
    pub job: JobId,
    pub how: StartedBy,
}

/// What the console did to start a job's execution.
#[derive(Debug, Clone, PartialEq)]
pub enum StartedBy {
    /// An upload, written into the inbox as this file.
    Upload(PathBuf),
    /// A schedule fired from the console.
    Schedule,
    /// A redrive.
    Redrive,
}

impl std::fmt::Display for StartedBy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StartedBy::Upload(file) => write!(f, "started from {}", file.display()),
            StartedBy::Schedule => f.write_str("started from a schedule"),
            StartedBy::Redrive => f.write_str("redriven"),
        }
    }
}

/// How to serve.
#[derive(Debug, Clone)]
pub struct ConsoleOptions {
    pub addr: SocketAddr,
    /// Largest upload accepted, in bytes.
    pub upload_limit: usize,
    /// The token to require; by default one is generated when `addr` is not loopback, and
    /// none is required on loopback.
    pub token: Option<String>,
}

impl ConsoleOptions {
    pub fn new(addr: SocketAddr) -> Self {
        Self {
            addr,
            upload_limit: DEFAULT_UPLOAD_LIMIT,
            token: None,
        }
    }
}

/// The console over one runtime.
pub struct Console {
    runtime: Arc<LocalRuntime>,
    inbox: PathBuf,
    started: Option<UnboundedSender<Started>>,
}

impl Console {
    /// A console for `runtime`; uploads go into `inbox/<pipeline>/` (the folder serve watches,
    /// or any folder of the work directory's).
    pub fn new(runtime: Arc<LocalRuntime>, inbox: impl Into<PathBuf>) -> Self {
        Self {
            runtime,
            inbox: inbox.into(),
            started: None,
        }
    }

    /// Tells `tx` of every job the console starts or redrives.
    pub fn on_started(mut self, tx: UnboundedSender<Started>) -> Self {
        self.started = Some(tx);
        self
    }

    /// Binds `options.addr`. The console is served by [`Bound::serve`].
    pub async fn bind(self, options: ConsoleOptions) -> anyhow::Result<Bound> {
        let listener = tokio::net::TcpListener::bind(options.addr)
            .await
            .with_context(|| format!("binding the console to {}", options.addr))?;
        let addr = listener.local_addr()?;
        // The rules follow the address really bound (port 0 becomes a real port).
        let access = Arc::new(Access::for_addr(addr, options.token));
        let graph = graph::Graph::from_definition(sluice_local::runtime::PIPELINE_ASL)
            .map_err(|e| anyhow::anyhow!("the pipeline state machine: {e}"))?;
        let app = Arc::new(App {
            reader: views::Reader {
                runtime: self.runtime.clone(),
                graph,
            },
            runtime: self.runtime,
            inbox: self.inbox,
            started: self.started,
            csrf: access.csrf.clone(),
            upload_limit: options.upload_limit,
        });
        let router = router(app, access.clone());
        Ok(Bound {
            listener,
            addr,
            token: access.token.clone(),
            router,
        })
    }
}

/// What the routes share.
pub(crate) struct App {
    pub(crate) reader: views::Reader,
    pub(crate) runtime: Arc<LocalRuntime>,
    pub(crate) inbox: PathBuf,
    pub(crate) started: Option<UnboundedSender<Started>>,
    pub(crate) csrf: String,
    pub(crate) upload_limit: usize,
}

impl App {
    pub(crate) fn started(&self, job: &JobId, how: StartedBy) {
        if let Some(tx) = &self.started {
            let _ = tx.send(Started {
                job: job.clone(),
                how,
            });
        }
    }
}

fn router(app: Arc<App>, access: Arc<Access>) -> Router {
    Router::new()
        .merge(pages::routes())
        .merge(api::routes(app.upload_limit))
        .with_state(app)
        .layer(axum::middleware::from_fn_with_state(
            access,
            security::guard,
        ))
}

/// A bound console, not yet serving.
pub struct Bound {
    listener: tokio::net::TcpListener,
    /// The address bound (with the real port when port 0 was asked for).
    pub addr: SocketAddr,
    /// The token clients must present, if one is required.
    pub token: Option<String>,
    router: Router,
}

impl Bound {
    /// The address to open: with the token as a login link when one is required.
    pub fn url(&self) -> String {
        let host = if self.addr.ip().is_unspecified() {
            // Bound to every interface: any of them works; name this machine's loopback.
            match self.addr {
                SocketAddr::V4(_) => format!("127.0.0.1:{}", self.addr.port()),
                SocketAddr::V6(_) => format!("[::1]:{}", self.addr.port()),
            }
        } else {
            self.addr.to_string()
        };
        match &self.token {
            Some(t) => format!("http://{host}/?token={t}"),
            None => format!("http://{host}/"),
        }
    }

    /// Serves until `shutdown` completes.
    pub async fn serve(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        axum::serve(self.listener, self.router)
            .with_graceful_shutdown(shutdown)
            .await
    }
}
