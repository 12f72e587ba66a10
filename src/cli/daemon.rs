//! `bankml daemon`: the long-running service.

use super::UserError;
use bankml::config::EngineConfig;
use bankml::daemon::{self, DaemonError, DaemonOptions};
use clap::Args;
use std::path::Path;

#[derive(Args, Debug)]
pub struct DaemonArgs {
    /// Listen on this address instead of daemon.listen (e.g. 127.0.0.1:9000).
    #[arg(long, env = "BANKML_LISTEN")]
    pub listen: Option<std::net::SocketAddr>,
}

pub fn run(args: DaemonArgs, config: EngineConfig, config_path: &Path) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let options = DaemonOptions {
        config_path: config_path.to_path_buf(),
        listen: args.listen,
    };
    runtime.block_on(daemon::run(config, options)).map_err(|e| match e {
        DaemonError::Jobs(_) | DaemonError::Listen { .. } => anyhow::Error::new(UserError(e.to_string())),
        other => other.into(),
    })
}
