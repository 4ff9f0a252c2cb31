//! The network plugins of one connection, called as Envoy's network filter manager calls
//! its filters: every read runs the read filters from the first with all the bytes the client
//! sent and no filter passed on yet; a filter that stops holds them (the next read or its
//! `proxy_continue_stream` goes on); bytes from the upstream pass the filters in reverse order
//! (Envoy's write filters), and an end of stream there stands for the upstream's close
//! (`UNKNOWN` peer), as Envoy's network Wasm filter reports it.

use std::rc::Rc;

use wasp_host::{NetworkAction, PeerType, SharedConnection};

use crate::filter::signals::{Direction, StreamSignals};
use crate::plugins::vms::{Step, WorkerVms};

/// What to do with bytes after the filters saw them.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Pass these bytes on (possibly empty, possibly rewritten).
    Forward(Vec<u8>),
    /// A filter stopped: keep them until it resumes or more bytes come.
    Hold,
    /// Close the connection (a plugin asked, or failed with FAIL_CLOSE).
    Close,
}

/// One plugin of the chain on this connection.
struct Member {
    plugin: usize,
    /// Its context and the VM generation; `None`: skipped for this connection (FAIL_OPEN).
    ctx: Option<(u32, u64)>,
}

/// The network plugins of one connection.
pub(crate) struct NetworkChain {
    vms: Rc<WorkerVms>,
    members: Vec<Member>,
    connection: SharedConnection,
    pub signals: Rc<StreamSignals>,
    /// The position whose StopIteration holds the client's bytes, if any.
    pub held_down: Option<usize>,
    /// The position whose StopIteration in `on_new_connection` holds the whole connection
    /// (no upstream, no reads) until it resumes, if any.
    pub held_new: Option<usize>,
    downstream_closed: bool,
}

impl NetworkChain {
    /// Opens a context in each plugin of `chain` (`on_new_connection`), up to the first that
    /// answers StopIteration (see [`NetworkChain::held_new`]); `None` when one of them cannot
    /// serve the connection and fails closed.
    pub fn open(
        vms: Rc<WorkerVms>,
        chain: &[usize],
        connection: SharedConnection,
    ) -> Option<NetworkChain> {
        let mut opened = NetworkChain {
            vms,
            members: chain
                .iter()
                .map(|&plugin| Member { plugin, ctx: None })
                .collect(),
            connection,
            signals: Rc::new(StreamSignals::default()),
            held_down: None,
            held_new: None,
            downstream_closed: false,
        };
        opened.open_from(0).then_some(opened)
    }

    /// The plugin at `position` resumed a connection it stopped in `on_new_connection`: the
    /// plugins after it get theirs. False when one of them fails closed (the chain is over).
    pub fn resume_new(&mut self, position: usize) -> bool {
        self.open_from(position + 1)
    }

    fn open_from(&mut self, from: usize) -> bool {
        self.held_new = None;
        for position in from..self.members.len() {
            self.signals.clear_resume(position, Direction::Request);
            let plugin = self.members[position].plugin;
            match self
                .vms
                .open_connection(plugin, &self.connection, &self.signals, position)
            {
                Step::Done((ctx, generation, action)) => {
                    self.members[position].ctx = Some((ctx, generation));
                    // Envoy stops the filter chain here: the filters after it, tcp_proxy
                    // included, wait for the plugin's proxy_continue_stream(DOWNSTREAM).
                    if action == NetworkAction::StopIteration {
                        self.held_new = Some(position);
                        return true;
                    }
                }
                Step::Skip => {}
                Step::Fail(_) => {
                    self.downstream_closed = true;
                    self.end_contexts();
                    return false;
                }
            }
        }
        true
    }

    /// Bytes from the client (`end_of_stream`: it half-closed): added to those held, then the
    /// filters from the first.
    pub fn downstream(&mut self, bytes: &[u8], end_of_stream: bool) -> Verdict {
        self.lock().downstream_data.extend_from_slice(bytes);
        self.run_downstream(0, end_of_stream)
    }

    /// The filter at `position` resumed the client's bytes: the filters after it.
    pub fn resume_downstream(&mut self, position: usize, end_of_stream: bool) -> Verdict {
        self.run_downstream(position + 1, end_of_stream)
    }

    fn run_downstream(&mut self, from: usize, end_of_stream: bool) -> Verdict {
        self.held_down = None;
        for position in from..self.members.len() {
            // A resume that came while this filter was not holding is a no-op, as in Envoy.
            self.signals.clear_resume(position, Direction::Request);
            match self.call(position, |vm, ctx| {
                vm.on_downstream_data(ctx, end_of_stream)
            }) {
                Some(NetworkAction::Continue) | None => {}
                Some(NetworkAction::StopIteration) => {
                    self.held_down = Some(position);
                    return self.closing().unwrap_or(Verdict::Hold);
                }
            }
            if let Some(close) = self.closing() {
                return close;
            }
        }
        Verdict::Forward(std::mem::take(&mut self.lock().downstream_data))
    }

    /// Bytes from the upstream (`end_of_stream`: it half-closed): the filters in reverse
    /// order.
    pub fn upstream(&mut self, bytes: &[u8], end_of_stream: bool) -> Verdict {
        self.lock().upstream_data.extend_from_slice(bytes);
        let mut held = false;
        for position in (0..self.members.len()).rev() {
            match self.call(position, |vm, ctx| vm.on_upstream_data(ctx, end_of_stream)) {
                Some(NetworkAction::Continue) | None => {}
                Some(NetworkAction::StopIteration) => held = true,
            }
            if end_of_stream {
                self.call(position, |vm, ctx| {
                    vm.on_upstream_connection_close(ctx, PeerType::Unknown)
                });
            }
            if held {
                break;
            }
        }
        if let Some(close) = self.closing() {
            return close;
        }
        if held {
            return Verdict::Hold;
        }
        Verdict::Forward(std::mem::take(&mut self.lock().upstream_data))
    }

    /// The client's connection closed (`peer`: who closed it).
    pub fn downstream_closed(&mut self, peer: PeerType) {
        if std::mem::replace(&mut self.downstream_closed, true) {
            return;
        }
        for position in 0..self.members.len() {
            self.call(position, |vm, ctx| {
                vm.on_downstream_connection_close(ctx, peer)
            });
        }
    }

    /// The connection is over: every context ends (done, log, delete). An upstream that never
    /// sent its end of stream (the connection closed first) gets no close callback, as in
    /// Envoy, whose network Wasm filter only sees the upstream's end on the write path.
    pub fn finish(mut self) {
        self.end_contexts();
    }

    fn end_contexts(&mut self) {
        for m in &mut self.members {
            if let Some((ctx, generation)) = m.ctx.take() {
                self.vms.close_connection(m.plugin, ctx, generation);
            }
        }
    }

    /// A plugin asked to close the connection, or failed closed.
    fn closing(&self) -> Option<Verdict> {
        self.signals.interrupt().map(|_| Verdict::Close)
    }

    /// One callback of the plugin at `position`; `None` when it is skipped (or just failed
    /// open). A failure that closes marks the connection for closing. A trap in this very
    /// call closes the connection whatever the failure policy, as Envoy fails the stream the
    /// VM broke in (FAIL_OPEN then skips the plugin for the connections that come after).
    fn call<T>(
        &mut self,
        position: usize,
        f: impl FnOnce(&mut wasp_host::Vm, u32) -> Result<T, wasp_host::CallError>,
    ) -> Option<T> {
        let member = &mut self.members[position];
        let (ctx, generation) = member.ctx?;
        let failures = &self.vms.plugin(member.plugin).stats.failures;
        let before = failures.load(std::sync::atomic::Ordering::Relaxed);
        let step = self.vms.call(member.plugin, generation, |vm| f(vm, ctx));
        let trapped = failures.load(std::sync::atomic::Ordering::Relaxed) != before;
        match step {
            Step::Done(value) => Some(value),
            Step::Skip if !trapped => {
                member.ctx = None;
                None
            }
            Step::Skip | Step::Fail(_) => {
                member.ctx = None;
                self.signals.reset();
                None
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, wasp_host::TcpConnection> {
        self.connection
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
