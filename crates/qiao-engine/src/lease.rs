//! Flow leases with process identity. A lease owner is `qiao:PID@HOST`; when a lease is
//! held by a process on this host that no longer runs (killed with -9, power cut), it is
//! taken over at once instead of blocking the flow until the lease expires.

use crate::{EngineError, Result};
use qiao_store::Store;
use std::time::Duration;

/// The lease owner name of this process.
pub fn process_owner() -> String {
    format!("qiao:{}@{}", std::process::id(), host())
}

fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".to_string())
}

/// True when `owner` names a qiao process on this host that is gone. Unknown owner
/// formats and other hosts are never presumed dead.
fn is_dead_local(owner: &str) -> bool {
    let Some(rest) = owner.strip_prefix("qiao:") else {
        return false;
    };
    let Some((pid, owner_host)) = rest.split_once('@') else {
        return false;
    };
    if owner_host != host() || pid.parse::<u32>().is_err() {
        return false;
    }
    // A pid that was reused by another program is dead for us too.
    match std::fs::read_to_string(format!("/proc/{pid}/comm")) {
        Ok(comm) => !comm.trim().starts_with("qiao"),
        Err(_) => true,
    }
}

/// Takes (or renews) the lease on `flow`, taking over from a dead local process.
pub async fn acquire(store: &dyn Store, flow: &str, owner: &str, ttl: Duration) -> Result<()> {
    if store.try_lock_flow(flow, owner, ttl).await? {
        return Ok(());
    }
    if let Some(holder) = store.flow_lock_owner(flow).await?
        && is_dead_local(&holder)
        && store.take_over_flow(flow, &holder, owner, ttl).await?
    {
        tracing::info!(flow, dead = %holder, "took over the lease of a process that is gone");
        return Ok(());
    }
    Err(EngineError::Busy(flow.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_gone_local_qiao_processes_are_dead() {
        assert!(
            !is_dead_local(&process_owner()),
            "this test process is alive (its comm starts with qiao)"
        );
        assert!(is_dead_local(&format!("qiao:{}@{}", u32::MAX - 1, host())));
        assert!(!is_dead_local("qiao:1@some-other-host"));
        assert!(!is_dead_local("test"));
    }
}
