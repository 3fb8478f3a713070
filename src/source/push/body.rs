//! The JSON an application posts to `POST /api/v1/pools`, and its validation (pure, time
//! passed in). Every problem names the field (`pools[2].capacity: ...`) and never quotes a
//! value.
//!
//! ```json
//! {
//!   "application": "checkout",        // the push target's name
//!   "instance": "web-1",              // this process (host name, pod name)
//!   "measured_at": 1764612000.25,     // optional: Unix seconds when the stats were read
//!   "final": false,                   // optional: true when the instance stops cleanly
//!   "pools": [{
//!     "name": "default",
//!     "capacity": 10, "in_use": 4, "idle": 6, "waiting": 0,
//!     "longest_wait_seconds": 0.0,    // optional
//!     "waits_total": 17,              // optional, cumulative
//!     "wait_seconds_total": 0.8,      // optional, cumulative
//!     "timeouts_total": 0             // optional, cumulative
//!   }]
//! }
//! ```

use serde::Deserialize;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Longest application, instance or pool name accepted, in bytes.
pub const MAX_NAME_BYTES: usize = 128;

/// Largest count accepted for any pool figure: far beyond any real pool, and small enough that
/// sums over many instances cannot overflow.
pub const MAX_COUNT: u64 = 1_000_000_000;

/// How far in the future `measured_at` may be (clock skew between hosts) before the push is
/// refused as a wrong clock; within it, the time of receipt is used instead.
pub const MAX_SKEW: Duration = Duration::from_secs(60);

/// A push as posted.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PushBody {
    /// The push target (`[[targets]] name`) the pools belong to.
    pub application: String,
    /// Which process of the application pushes: its pools are summed with the other fresh
    /// instances' pools of the same name.
    pub instance: String,
    /// When the stats were read, in Unix seconds; default: when the push arrives.
    #[serde(default)]
    pub measured_at: Option<f64>,
    /// The instance stops: its pools leave the aggregate now instead of after the ttl.
    #[serde(default, rename = "final")]
    pub final_: bool,
    /// The instance's pools; may be empty when `final` is true.
    pub pools: Vec<PoolBody>,
}

/// One pool of a push.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolBody {
    /// The pool's name within the application (`default`, a database alias).
    pub name: String,
    /// Most connections the pool opens (psycopg_pool's `max_size`, node-postgres' `max`).
    pub capacity: u64,
    /// Connections checked out by the application.
    pub in_use: u64,
    /// Open connections ready to be handed out.
    pub idle: u64,
    /// Requests queued for a connection.
    pub waiting: u64,
    /// How long the longest-waiting request has waited, in seconds.
    #[serde(default)]
    pub longest_wait_seconds: Option<f64>,
    /// Requests that had to wait, since the pool started.
    #[serde(default)]
    pub waits_total: Option<u64>,
    /// Seconds requests spent waiting, since the pool started.
    #[serde(default)]
    pub wait_seconds_total: Option<f64>,
    /// Requests that gave up waiting (acquire timeouts), since the pool started.
    #[serde(default)]
    pub timeouts_total: Option<u64>,
}

/// A validated pool of one instance.
#[derive(Debug, Clone, PartialEq)]
pub struct PushedPool {
    /// See [`PoolBody::name`].
    pub name: String,
    /// See [`PoolBody::capacity`].
    pub capacity: u64,
    /// See [`PoolBody::in_use`].
    pub in_use: u64,
    /// See [`PoolBody::idle`].
    pub idle: u64,
    /// See [`PoolBody::waiting`].
    pub waiting: u64,
    /// See [`PoolBody::longest_wait_seconds`].
    pub longest_wait: Option<Duration>,
    /// See [`PoolBody::waits_total`].
    pub waits: Option<u64>,
    /// See [`PoolBody::wait_seconds_total`].
    pub wait_seconds: Option<f64>,
    /// See [`PoolBody::timeouts_total`].
    pub timeouts: Option<u64>,
}

/// A validated push.
#[derive(Debug, Clone, PartialEq)]
pub struct Push {
    /// See [`PushBody::instance`].
    pub instance: String,
    /// When the stats were read: `measured_at`, never later than their arrival.
    pub at: SystemTime,
    /// See [`PushBody::final_`].
    pub final_: bool,
    /// The pools, in the order posted.
    pub pools: Vec<PushedPool>,
}

/// Checks a name (`field` says which, for the message).
pub fn check_name(field: &str, name: &str) -> Result<(), String> {
    if name.trim().is_empty() {
        return Err(format!("{field}: must not be empty"));
    }
    if name.len() > MAX_NAME_BYTES {
        return Err(format!("{field}: at most {MAX_NAME_BYTES} bytes"));
    }
    if name.chars().any(char::is_control) {
        return Err(format!("{field}: must not contain control characters"));
    }
    Ok(())
}

/// Validates `body`, received at `now`, for a target with `ttl` that takes at most
/// `max_pools` pools per push.
pub fn validate(
    body: PushBody,
    now: SystemTime,
    ttl: Duration,
    max_pools: usize,
) -> Result<Push, String> {
    check_name("instance", &body.instance)?;
    let at = measured_at(body.measured_at, now, ttl)?;
    if body.pools.len() > max_pools {
        return Err(format!(
            "pools: at most {max_pools} pools per push (got {})",
            body.pools.len()
        ));
    }
    if body.pools.is_empty() && !body.final_ {
        return Err(
            "pools: must not be empty (send \"final\": true when the instance stops)".into(),
        );
    }
    let mut pools: Vec<PushedPool> = Vec::with_capacity(body.pools.len());
    for (i, p) in body.pools.into_iter().enumerate() {
        let pool = check_pool(&format!("pools[{i}]"), p)?;
        if let Some(j) = pools.iter().position(|q| q.name == pool.name) {
            return Err(format!("pools[{i}].name: the same name as pools[{j}]"));
        }
        pools.push(pool);
    }
    Ok(Push {
        instance: body.instance,
        at,
        final_: body.final_,
        pools,
    })
}

/// The time the stats were read: `measured_at` if given and sensible, else `now`.
fn measured_at(value: Option<f64>, now: SystemTime, ttl: Duration) -> Result<SystemTime, String> {
    let Some(secs) = value else { return Ok(now) };
    if !(0.0..=1e11).contains(&secs) {
        return Err("measured_at: must be Unix seconds (e.g. 1764612000.25)".into());
    }
    let at = UNIX_EPOCH + Duration::from_secs_f64(secs);
    if let Ok(ahead) = at.duration_since(now) {
        if ahead > MAX_SKEW {
            return Err(format!(
                "measured_at: {} in the future (more than {} of clock skew): check the clocks",
                crate::timefmt::human(ahead),
                crate::timefmt::human(MAX_SKEW)
            ));
        }
        return Ok(now);
    }
    let age = now.duration_since(at).unwrap_or_default();
    if age > ttl {
        return Err(format!(
            "measured_at: {} old, older than the target's ttl ({}): these stats are stale",
            crate::timefmt::human(age),
            crate::timefmt::human(ttl)
        ));
    }
    Ok(at)
}

fn check_pool(at: &str, p: PoolBody) -> Result<PushedPool, String> {
    check_name(&format!("{at}.name"), &p.name)?;
    for (field, v) in [
        ("capacity", p.capacity),
        ("in_use", p.in_use),
        ("idle", p.idle),
        ("waiting", p.waiting),
        ("waits_total", p.waits_total.unwrap_or(0)),
        ("timeouts_total", p.timeouts_total.unwrap_or(0)),
    ] {
        if v > MAX_COUNT {
            return Err(format!("{at}.{field}: at most {MAX_COUNT}"));
        }
    }
    if p.capacity < p.in_use + p.idle {
        return Err(format!(
            "{at}.capacity: must be ≥ in_use + idle ({} + {})",
            p.in_use, p.idle
        ));
    }
    let longest_wait = seconds(
        &format!("{at}.longest_wait_seconds"),
        p.longest_wait_seconds,
    )?
    .map(Duration::from_secs_f64);
    let wait_seconds = seconds(&format!("{at}.wait_seconds_total"), p.wait_seconds_total)?;
    Ok(PushedPool {
        name: p.name,
        capacity: p.capacity,
        in_use: p.in_use,
        idle: p.idle,
        waiting: p.waiting,
        longest_wait,
        waits: p.waits_total,
        wait_seconds,
        timeouts: p.timeouts_total,
    })
}

/// A number of seconds: finite, not negative, below 10⁹ (about 30 years; beyond that it is a
/// unit mistake).
fn seconds(field: &str, value: Option<f64>) -> Result<Option<f64>, String> {
    match value {
        Some(s) if !s.is_finite() || s < 0.0 => {
            Err(format!("{field}: must be a number of seconds ≥ 0"))
        }
        Some(s) if s > 1e9 => Err(format!(
            "{field}: too large for seconds (milliseconds sent as seconds?)"
        )),
        other => Ok(other),
    }
}

#[cfg(test)]
mod tests;
