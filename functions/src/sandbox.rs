//! What a guest's store holds, and what it is (not) given: the WASI context with nothing
//! granted, captured output, the memory limiter, and the clamp on sleeping.

use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use wasmtime::component::{HasData, Linker, Resource, ResourceTable};
use wasmtime::{ResourceLimiter, Result as WasmResult};
use wasmtime_wasi::clocks::WasiClocksCtxView;
use wasmtime_wasi::p2::DynPollable;
use wasmtime_wasi::p2::bindings::clocks::monotonic_clock;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{
    Deterministic, HostMonotonicClock, HostWallClock, WasiCtx, WasiCtxView, WasiView,
};

use crate::Limits;

/// The most elements one table may grow to (Python components hold tens of thousands).
const TABLE_ELEMENTS_MAX: usize = 1 << 20;

/// The most WASI resources (streams, pollables…) one instance may hold at once: they
/// live in host memory, which the memory limit does not count.
pub(crate) const RESOURCES_MAX: usize = 10_000;

/// The most random bytes one WASI call may ask for (the host allocates them first).
const RANDOM_BYTES_MAX: u64 = 1 << 20;

/// The state of one guest instance's store.
pub(crate) struct GuestState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(crate) limiter: GuestLimiter,
    pub(crate) stdout: CapturedOutput,
    pub(crate) stderr: CapturedOutput,
    /// When the current call (or instantiation) started, and its deadline: a sleep
    /// that would end after it is refused.
    pub(crate) call_started: Instant,
    pub(crate) deadline: Duration,
}

impl GuestState {
    /// A store state that grants nothing: no arguments, no environment, no preopened
    /// directories, no network, stdin closed, stdout/stderr into capped memory pipes,
    /// frozen clocks and a deterministic random source seeded from the component.
    pub(crate) fn new(limits: &Limits, component_digest: &[u8; 32]) -> Self {
        let stdout = CapturedOutput::new(limits.output_bytes);
        let stderr = CapturedOutput::new(limits.output_bytes);
        let mut builder = WasiCtx::builder();
        builder
            .stdout(stdout.pipe.clone())
            .stderr(stderr.pipe.clone())
            .wall_clock(FrozenWallClock)
            .monotonic_clock(FrozenMonotonicClock)
            .secure_random(Deterministic::new(random_bytes(
                component_digest,
                b"secure",
            )))
            .insecure_random(Deterministic::new(random_bytes(
                component_digest,
                b"insecure",
            )))
            .max_random_size(RANDOM_BYTES_MAX)
            .insecure_random_seed(u128::from_le_bytes(
                component_digest[..16].try_into().unwrap_or_default(),
            ))
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .socket_addr_check(|_, _| Box::pin(async { false }));
        let mut table = ResourceTable::new();
        table.set_max_capacity(RESOURCES_MAX);
        Self {
            wasi: builder.build(),
            table,
            limiter: GuestLimiter::new(limits.memory_bytes),
            stdout,
            stderr,
            call_started: Instant::now(),
            deadline: limits.deadline,
        }
    }
}

impl WasiView for GuestState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// 4 KiB of deterministic bytes for a random source: a SHA-256 chain over the
/// component's digest.  (The source cycles through them.)
fn random_bytes(digest: &[u8; 32], purpose: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4096);
    let mut block: [u8; 32] = Sha256::new()
        .chain_update(purpose)
        .chain_update(digest)
        .finalize()
        .into();
    while out.len() < 4096 {
        out.extend_from_slice(&block);
        block = Sha256::digest(block).into();
    }
    out
}

/// The wall clock a guest sees: always the Unix epoch.
struct FrozenWallClock;

impl HostWallClock for FrozenWallClock {
    fn resolution(&self) -> Duration {
        Duration::from_secs(1)
    }
    fn now(&self) -> Duration {
        Duration::ZERO
    }
}

/// The monotonic clock a guest sees: always zero.
struct FrozenMonotonicClock;

impl HostMonotonicClock for FrozenMonotonicClock {
    fn resolution(&self) -> u64 {
        1_000_000_000
    }
    fn now(&self) -> u64 {
        0
    }
}

/// One captured output stream: a memory pipe of `output_bytes`, and how much of it
/// has been forwarded to `tracing` already.
pub(crate) struct CapturedOutput {
    pipe: MemoryOutputPipe,
    capacity: usize,
    forwarded: usize,
    warned_full: bool,
}

impl CapturedOutput {
    fn new(capacity: usize) -> Self {
        Self {
            pipe: MemoryOutputPipe::new(capacity),
            capacity,
            forwarded: 0,
            warned_full: false,
        }
    }

    /// What was written since the last call, if anything.
    pub(crate) fn take_new(&mut self) -> Option<String> {
        let contents = self.pipe.contents();
        if contents.len() <= self.forwarded {
            return None;
        }
        let new = String::from_utf8_lossy(&contents[self.forwarded..]).into_owned();
        self.forwarded = contents.len();
        Some(new)
    }

    /// Whether the pipe is full: the guest's further writes are refused (the stream
    /// reports itself closed), so the instance should not be reused.
    pub(crate) fn is_full(&self) -> bool {
        self.forwarded >= self.capacity
    }

    /// Whether the "output is full" warning is still to be given (once per instance).
    pub(crate) fn warn_full_once(&mut self) -> bool {
        if self.is_full() && !self.warned_full {
            self.warned_full = true;
            true
        } else {
            false
        }
    }
}

/// Memory accounting for one store: the total of all its linear memories may not
/// exceed the limit.  Crossing it traps (it does not make `memory.grow` return -1),
/// and is recorded so that the error can name the limit.
pub(crate) struct GuestLimiter {
    pub(crate) limit: usize,
    used: usize,
    /// Set when a growth was refused for the limit: the total that was asked for.
    pub(crate) exceeded: Option<usize>,
}

impl GuestLimiter {
    fn new(limit: usize) -> Self {
        Self {
            limit,
            used: 0,
            exceeded: None,
        }
    }
}

/// The error a refused memory growth raises inside wasmtime.
#[derive(Debug, thiserror::Error)]
#[error("memory limit of {limit} bytes exceeded (asked for {requested} bytes in all)")]
pub(crate) struct MemoryLimitHit {
    limit: usize,
    requested: usize,
}

/// The error a refused table growth raises inside wasmtime.
#[derive(Debug, thiserror::Error)]
#[error("a table may hold at most {TABLE_ELEMENTS_MAX} elements (asked for {0})")]
pub(crate) struct TableLimitHit(usize);

impl ResourceLimiter for GuestLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> WasmResult<bool> {
        if maximum.is_some_and(|max| desired > max) {
            // The module's own maximum: `memory.grow` fails as WebAssembly says.
            return Ok(false);
        }
        let total = self.used.saturating_add(desired.saturating_sub(current));
        if total > self.limit {
            self.exceeded = Some(total);
            return Err(MemoryLimitHit {
                limit: self.limit,
                requested: total,
            }
            .into());
        }
        self.used = total;
        Ok(true)
    }

    fn memory_grow_failed(&mut self, error: wasmtime::Error) -> WasmResult<()> {
        Err(error)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> WasmResult<bool> {
        if maximum.is_some_and(|max| desired > max) {
            return Ok(false);
        }
        if desired > TABLE_ELEMENTS_MAX {
            return Err(TableLimitHit(desired).into());
        }
        Ok(true)
    }

    fn table_grow_failed(&mut self, error: wasmtime::Error) -> WasmResult<()> {
        Err(error)
    }
}

/// The error raised when a guest asks to sleep past its deadline.
#[derive(Debug, thiserror::Error)]
#[error("tried to sleep {requested_ms} ms with {remaining_ms} ms left before the deadline")]
pub(crate) struct SleepPastDeadline {
    requested_ms: u128,
    remaining_ms: u128,
}

/// `wasi:clocks/monotonic-clock` as the guest gets it: WASI's own implementation, except
/// that a sleep (`subscribe-duration`, `subscribe-instant`) ending after the call's
/// deadline traps at once.  Epoch interruption cannot stop a thread blocked in the host,
/// so without this a guest could block its caller forever.
struct BoundedClocks<'a> {
    inner: WasiClocksCtxView<'a>,
    call_started: Instant,
    deadline: Duration,
}

impl BoundedClocks<'_> {
    fn check(&self, requested: Duration) -> WasmResult<()> {
        let remaining = self.deadline.saturating_sub(self.call_started.elapsed());
        if requested > remaining {
            return Err(SleepPastDeadline {
                requested_ms: requested.as_millis(),
                remaining_ms: remaining.as_millis(),
            }
            .into());
        }
        Ok(())
    }
}

impl monotonic_clock::Host for BoundedClocks<'_> {
    fn now(&mut self) -> WasmResult<monotonic_clock::Instant> {
        self.inner.now()
    }

    fn resolution(&mut self) -> WasmResult<monotonic_clock::Duration> {
        self.inner.resolution()
    }

    fn subscribe_instant(
        &mut self,
        when: monotonic_clock::Instant,
    ) -> WasmResult<Resource<DynPollable>> {
        let now = self.inner.now()?;
        self.check(Duration::from_nanos(when.saturating_sub(now)))?;
        self.inner.subscribe_instant(when)
    }

    fn subscribe_duration(
        &mut self,
        duration: monotonic_clock::Duration,
    ) -> WasmResult<Resource<DynPollable>> {
        self.check(Duration::from_nanos(duration))?;
        self.inner.subscribe_duration(duration)
    }
}

struct HasBoundedClocks;

impl HasData for HasBoundedClocks {
    type Data<'a> = BoundedClocks<'a>;
}

fn bounded_clocks(state: &mut GuestState) -> BoundedClocks<'_> {
    BoundedClocks {
        inner: WasiClocksCtxView {
            ctx: state.wasi.clocks(),
            table: &mut state.table,
        },
        call_started: state.call_started,
        deadline: state.deadline,
    }
}

/// The linker every component is linked with: WASI 0.2 (synchronous), with the
/// monotonic clock replaced by [`BoundedClocks`].  Nothing else is defined, so a
/// component importing anything else fails to link.
pub(crate) fn linker(engine: &wasmtime::Engine) -> WasmResult<Linker<GuestState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
    linker.allow_shadowing(true);
    monotonic_clock::add_to_linker::<GuestState, HasBoundedClocks>(&mut linker, bounded_clocks)?;
    linker.allow_shadowing(false);
    Ok(linker)
}
