//! The open-file limit (`RLIMIT_NOFILE`) and how poolwatch shares it.
//!
//! systemd starts services with a soft limit of 1024 (so that programs still using `select()`
//! keep working) and a hard limit of 524288, and expects programs that need more to raise the
//! soft limit themselves. poolwatch uses epoll, never `select()`, so at start-up it raises the
//! soft limit to the hard one ([`raise_soft_to_hard`]).
//!
//! The HTTP port is then given what is left once descriptors are kept for everything else:
//!
//! ```text
//! reserve          = 64 + 4 × targets + 4 × receivers
//! HTTP connections ≤ soft limit − reserve − 1
//! effective limit  = min(http.max_connections, that), at least 1
//! ```
//!
//! * 64 for the process itself: standard streams, the runtime's epoll and wake-up descriptors,
//!   the signal pipe, the HTTP listener, the state file (its temporary copy is written and
//!   renamed on every save, and read at start-up), configuration and secret files read on a
//!   reload, and slack for libraries (name resolution reads `/etc/hosts`, `resolv.conf`, ...).
//! * 4 per target: its one PostgreSQL connection, a replacement opening while the old one
//!   closes, and the sockets of a name look-up (A and AAAA).
//! * 4 per receiver: its pooled HTTP connection, a new one while a stale one closes, and the
//!   sockets of a name look-up.
//! * 1 for the connection being accepted when every slot is taken (it is answered and closed).
//!
//! With systemd's 1024 and nothing raised, one target and one receiver: 1024 − 72 − 1 = 951
//! connections at most, so the default `max_connections` (64) is unaffected; the formula
//! matters when `max_connections` is set high or the limit is small.

use crate::http::Limits;

/// Descriptors kept for the process itself (see the module documentation).
pub const BASE_RESERVE: u64 = 64;
/// Descriptors kept per target.
pub const PER_TARGET: u64 = 4;
/// Descriptors kept per receiver.
pub const PER_RECEIVER: u64 = 4;
/// The soft limit to use when the hard limit is "unlimited" (Linux's default `fs.nr_open`).
pub const UNLIMITED_SOFT: u64 = 1 << 20;

/// A soft and hard `RLIMIT_NOFILE` (`u64::MAX` for unlimited).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Nofile {
    /// What the kernel enforces now.
    pub soft: u64,
    /// How far an unprivileged process may raise `soft`.
    pub hard: u64,
}

/// The soft limit to ask for: the hard limit (or [`UNLIMITED_SOFT`] when that is unlimited),
/// never lower than the current soft limit. `None` when nothing would change.
pub fn raised_soft(limit: Nofile) -> Option<u64> {
    let target = if limit.hard == u64::MAX {
        UNLIMITED_SOFT
    } else {
        limit.hard
    };
    (target > limit.soft).then_some(target)
}

/// Descriptors kept for everything but HTTP connections.
pub fn reserve(targets: usize, receivers: usize) -> u64 {
    let count = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
    BASE_RESERVE
        .saturating_add(PER_TARGET.saturating_mul(count(targets)))
        .saturating_add(PER_RECEIVER.saturating_mul(count(receivers)))
}

/// Most HTTP connections a soft limit of `soft` leaves room for, at least 1.
pub fn http_budget(soft: u64, targets: usize, receivers: usize) -> usize {
    let left = soft
        .saturating_sub(reserve(targets, receivers))
        .saturating_sub(1);
    usize::try_from(left).unwrap_or(usize::MAX).max(1)
}

/// The current limits.
pub fn get() -> std::io::Result<Nofile> {
    let mut rl = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit through a valid pointer.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(Nofile {
        soft: from_rlim(rl.rlim_cur),
        hard: from_rlim(rl.rlim_max),
    })
}

// rlim_t is u64 on 64-bit Linux (the casts are no-ops) and narrower elsewhere, where every
// value converted back came from an rlim_t in the first place.
#[allow(clippy::unnecessary_cast)]
fn from_rlim(v: libc::rlim_t) -> u64 {
    if v == libc::RLIM_INFINITY {
        u64::MAX
    } else {
        v as u64
    }
}

#[allow(clippy::unnecessary_cast)]
fn set_soft(limit: Nofile, soft: u64) -> std::io::Result<()> {
    let to_rlim = |v: u64| {
        if v == u64::MAX {
            libc::RLIM_INFINITY
        } else {
            v as libc::rlim_t
        }
    };
    let rl = libc::rlimit {
        rlim_cur: to_rlim(soft),
        rlim_max: to_rlim(limit.hard),
    };
    // SAFETY: setrlimit reads one rlimit through a valid pointer.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &rl) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Raises the soft limit to the hard limit and logs both; a failure is logged and the process
/// goes on with the limit it has. Returns the limits in force afterwards.
pub fn raise_soft_to_hard() -> Option<Nofile> {
    let before = match get() {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the open-file limit (RLIMIT_NOFILE)");
            return None;
        }
    };
    let Some(soft) = raised_soft(before) else {
        tracing::info!(
            soft = before.soft,
            hard = before.hard,
            "open-file limit already at its hard limit"
        );
        return Some(before);
    };
    match set_soft(before, soft) {
        Ok(()) => {
            tracing::info!(
                from = before.soft,
                soft,
                hard = before.hard,
                "raised the open-file limit (RLIMIT_NOFILE) to the hard limit"
            );
            Some(Nofile { soft, ..before })
        }
        Err(e) => {
            tracing::warn!(soft = before.soft, hard = before.hard, wanted = soft, error = %e,
                "cannot raise the open-file limit; keeping the soft limit");
            Some(before)
        }
    }
}

/// `configured` with `max_connections` lowered to what the current open-file limit leaves for
/// HTTP with `targets` and `receivers` (see the module documentation); logs the outcome.
pub fn fit_http(configured: Limits, targets: usize, receivers: usize) -> Limits {
    let soft = match get() {
        Ok(l) => l.soft,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the open-file limit; HTTP connections limited by http.max_connections only");
            return configured;
        }
    };
    let budget = http_budget(soft, targets, receivers);
    let effective = configured.max_connections.min(budget);
    if effective < configured.max_connections {
        tracing::warn!(
            max_connections = configured.max_connections,
            effective,
            open_file_limit = soft,
            reserve = reserve(targets, receivers),
            "http.max_connections is more than the open-file limit leaves for HTTP; raise the \
             limit (LimitNOFILE= in systemd, ulimit -n) to allow more"
        );
    } else {
        tracing::info!(
            max_connections = effective,
            open_file_limit = soft,
            reserve = reserve(targets, receivers),
            "HTTP connection limit"
        );
    }
    Limits {
        max_connections: effective,
        ..configured
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_soft_limit_is_raised_to_the_hard_limit() {
        let cases = [
            (1024, 4096, Some(4096)),
            (1024, 524288, Some(524288)),
            (1024, 1024, None),
            (4096, 1024, None), // cannot happen; never lower
            (1024, u64::MAX, Some(UNLIMITED_SOFT)),
            (u64::MAX, u64::MAX, None),
            (UNLIMITED_SOFT, u64::MAX, None),
        ];
        for (soft, hard, want) in cases {
            assert_eq!(raised_soft(Nofile { soft, hard }), want, "{soft}/{hard}");
        }
    }

    #[test]
    fn the_reserve_grows_with_targets_and_receivers() {
        let cases = [
            (0, 0, 64),
            (1, 1, 72),
            (10, 0, 104),
            (0, 10, 104),
            (100, 5, 484),
            (usize::MAX, usize::MAX, u64::MAX),
        ];
        for (targets, receivers, want) in cases {
            assert_eq!(reserve(targets, receivers), want, "{targets}/{receivers}");
        }
    }

    #[test]
    fn http_gets_what_the_reserve_leaves() {
        let cases = [
            (1024, 1, 1, 951),
            (4096, 1, 1, 4023),
            (1024, 100, 10, 519),
            (1024, 240, 0, 1), // nothing left: HTTP keeps one connection
            (64, 0, 0, 1),
            (0, 0, 0, 1),
            (1 << 20, 0, 0, 1_048_511),
        ];
        for (soft, targets, receivers, want) in cases {
            assert_eq!(
                http_budget(soft, targets, receivers),
                want,
                "{soft} {targets} {receivers}"
            );
        }
    }

    #[test]
    fn the_limits_can_be_read() {
        let l = get().expect("getrlimit");
        assert!(l.soft <= l.hard, "{l:?}");
    }
}
