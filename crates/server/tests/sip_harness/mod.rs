//! Real SIP peers for `sip_e2e.rs`: a Kamailio proxy running the project's
//! `tests/sip/kamailio.cfg`, SIPp callees (destination call centers, agents' phones) and SIPp
//! callers, all on 127.0.0.1 with ports picked free at run time, each in its own process group
//! that is stopped when its handle drops (also when a test panics).
//!
//! Nothing here reads the clock to decide an outcome: calls are held until the test releases
//! them (an INFO to the callee), and every wait polls a state (a log line, a bound port, an
//! HTTP answer) under a generous deadline that only turns a hang into a failure with context.
#![allow(dead_code)]

use std::collections::HashMap;
use std::fs;
use std::io::Read;
use std::net::UdpSocket;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// How long a wait may take before it fails the test (a hang, not a measurement).
pub const DEADLINE: Duration = Duration::from_secs(60);

/// The project's SIP kit: `tests/sip/` at the repository's root.
pub fn kit_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/sip")
}

/// The SIP tools' paths. A missing one fails the test (never skipped) and says how to install.
#[derive(Debug, Clone)]
pub struct Tools {
    pub kamailio: PathBuf,
    pub sipp: PathBuf,
}

/// Finds `kamailio` and `sipp` (on `PATH`, or in the sbin folders Debian uses).
pub fn tools() -> Tools {
    let find = |name: &str| -> Option<PathBuf> {
        let path = std::env::var_os("PATH").unwrap_or_default();
        std::env::split_paths(&path)
            .chain(["/usr/sbin", "/usr/local/sbin", "/sbin"].map(PathBuf::from))
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    };
    let missing: Vec<&str> = ["kamailio", "sipp"]
        .into_iter()
        .filter(|n| find(n).is_none())
        .collect();
    assert!(
        missing.is_empty(),
        "the real-SIP test needs {} and cannot find it: run scripts/install-sip-tools (as root; \
         it installs Debian's kamailio, kamailio-utils-modules, kamailio-extra-modules and \
         sip-tester). This test is never skipped.",
        missing.join(" and ")
    );
    Tools {
        kamailio: find("kamailio").unwrap(),
        sipp: find("sipp").unwrap(),
    }
}

/// A UDP port on 127.0.0.1 that was free a moment ago (a child that then fails to bind it is
/// started again on another one).
pub fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("bind a UDP port")
        .port()
}

/// True while something holds `port` on 127.0.0.1 (UDP).
fn udp_port_taken(port: u16) -> bool {
    UdpSocket::bind(("127.0.0.1", port)).is_err()
}

/// The last `max` bytes of a file, for failure messages.
pub fn tail(path: &Path, max: usize) -> String {
    let mut s = String::new();
    if let Ok(mut f) = fs::File::open(path) {
        let _ = f.read_to_string(&mut s);
    }
    if s.len() > max {
        let mut cut = s.len() - max;
        while !s.is_char_boundary(cut) {
            cut += 1;
        }
        s = format!("…{}", &s[cut..]);
    }
    s
}

/// A child process in its own process group; dropping it stops the whole group (SIGTERM, then
/// SIGKILL if it lingers), so Kamailio's worker processes go with it.
pub struct Proc {
    pub name: String,
    child: Child,
    /// Its stdout and stderr.
    pub output: PathBuf,
}

impl Proc {
    fn spawn(name: &str, dir: &Path, cmd: &mut Command) -> Proc {
        let output = dir.join(format!("{name}.out"));
        let out = fs::File::create(&output).expect("output file");
        let err = out.try_clone().expect("output file");
        let child = cmd
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("start {name} ({cmd:?}): {e}"));
        Proc {
            name: name.to_owned(),
            child,
            output,
        }
    }

    /// The exit status once it has ended.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().expect("try_wait")
    }

    fn signal_group(&self, sig: &str) {
        let _ = Command::new("kill")
            .args([sig, "--", &format!("-{}", self.child.id())])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.exited().is_none() {
            self.signal_group("-TERM");
            let until = Instant::now() + Duration::from_secs(5);
            while self.exited().is_none() && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        // The group's other members (Kamailio's workers) too, whatever the leader did.
        self.signal_group("-KILL");
        let _ = self.child.wait();
    }
}

/// Polls `probe` every 50 ms until it answers `Some`, or fails with `what` and `context()`.
pub async fn wait_for<T>(
    what: &str,
    mut probe: impl FnMut() -> Option<T>,
    context: impl Fn() -> String,
) -> T {
    let until = Instant::now() + DEADLINE;
    loop {
        if let Some(v) = probe() {
            return v;
        }
        assert!(
            Instant::now() < until,
            "gave up waiting for {what}\n{}",
            context()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A running Kamailio with the project's config.
pub struct Kamailio {
    pub port: u16,
    proc: Proc,
}

impl Kamailio {
    /// Starts Kamailio on 127.0.0.1 and a free port, asking `switchboard_url` with `key`; waits
    /// until it answers an OPTIONS.
    pub async fn start(tools: &Tools, dir: &Path, switchboard_url: &str, key: &str) -> Kamailio {
        Self::start_with(tools, dir, switchboard_url, key, &[]).await
    }

    /// [`Kamailio::start`] with more `-A` defines (`NAME=value`, e.g. a `PSTN_GATEWAY`).
    pub async fn start_with(
        tools: &Tools,
        dir: &Path,
        switchboard_url: &str,
        key: &str,
        defines: &[String],
    ) -> Kamailio {
        static KAMAILIOS: AtomicU32 = AtomicU32::new(0);
        let n = KAMAILIOS.fetch_add(1, Ordering::Relaxed);
        // Its own copy, so that a switchboard-local.cfg lying beside the project's config is
        // not picked up.
        let own = dir.join(format!("kamailio-{n}"));
        let runtime = own.join("run");
        fs::create_dir_all(&runtime).expect("runtime dir");
        let cfg = own.join("kamailio.cfg");
        fs::copy(kit_dir().join("kamailio.cfg"), &cfg).expect("copy kamailio.cfg");
        for attempt in 0..3 {
            let port = free_udp_port();
            let mut cmd = Command::new(&tools.kamailio);
            cmd.args(["-DD", "-E", "-m", "48", "-M", "8", "-f"])
                .arg(&cfg)
                .arg("-Y")
                .arg(&runtime)
                .arg("-A")
                .arg(format!("SIP_LISTEN=udp:127.0.0.1:{port}"))
                .arg("-A")
                .arg(format!("SWITCHBOARD_URL=\"{switchboard_url}\""))
                .arg("-A")
                .arg(format!("SWITCHBOARD_KEY=\"{key}\""));
            for d in defines {
                cmd.arg("-A").arg(d);
            }
            let mut proc = Proc::spawn(&format!("kamailio-{n}-{attempt}"), dir, &mut cmd);
            let until = Instant::now() + DEADLINE;
            loop {
                if let Some(status) = proc.exited() {
                    let out = tail(&proc.output, 6000);
                    if out.contains("Address already in use") && attempt < 2 {
                        break; // someone took the port meanwhile: another one
                    }
                    panic!(
                        "kamailio exited ({status}) at start; its output:\n{out}\n\
                         (are kamailio-utils-modules and kamailio-extra-modules installed? \
                         run scripts/install-sip-tools)"
                    );
                }
                if options_ping(port).await {
                    return Kamailio { port, proc };
                }
                assert!(
                    Instant::now() < until,
                    "kamailio did not answer OPTIONS on 127.0.0.1:{port}; its output:\n{}",
                    tail(&proc.output, 6000)
                );
            }
        }
        unreachable!("three attempts")
    }

    /// The end of its log (for failure messages).
    pub fn log_tail(&self) -> String {
        tail(&self.proc.output, 8000)
    }
}

/// True when Kamailio on `port` answers an OPTIONS with the keepalive 200.
async fn options_ping(port: u16) -> bool {
    let Ok(sock) = tokio::net::UdpSocket::bind("127.0.0.1:0").await else {
        return false;
    };
    let me = sock.local_addr().unwrap().port();
    let msg = format!(
        "OPTIONS sip:127.0.0.1:{port} SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:{me};branch=z9hG4bK-ping-{me}\r\n\
         From: <sip:ping@127.0.0.1:{me}>;tag=ping\r\n\
         To: <sip:127.0.0.1:{port}>\r\n\
         Call-ID: ping-{me}@127.0.0.1\r\n\
         CSeq: 1 OPTIONS\r\n\
         Max-Forwards: 70\r\n\
         Content-Length: 0\r\n\r\n"
    );
    if sock
        .send_to(msg.as_bytes(), ("127.0.0.1", port))
        .await
        .is_err()
    {
        return false;
    }
    let mut buf = [0u8; 2048];
    match tokio::time::timeout(Duration::from_millis(300), sock.recv(&mut buf)).await {
        Ok(Ok(n)) => String::from_utf8_lossy(&buf[..n]).starts_with("SIP/2.0 200"),
        _ => false,
    }
}

/// What a callee's log says happened to one call, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CalleeEvent {
    /// The INVITE arrived (with the R-URI's user part).
    Start(String, String),
    /// It hangs up an answered call.
    End(String),
    /// The caller's side gave up (CANCEL) while it rang.
    Canceled(String),
}

/// A SIPp callee: a destination call center or an agent's phone.
pub struct Callee {
    pub name: String,
    pub port: u16,
    log: PathBuf,
    proc: Proc,
}

static RELEASES: AtomicU32 = AtomicU32::new(0);

impl Callee {
    /// A callee that rings briefly, answers, and holds each call until [`Callee::release`].
    pub async fn answering(tools: &Tools, dir: &Path, name: &str) -> Callee {
        Self::start(tools, dir, name, "uas_answer.xml").await
    }

    /// A callee that rings and never answers (the proxy's INVITE timer ends the call).
    pub async fn silent(tools: &Tools, dir: &Path, name: &str) -> Callee {
        Self::start(tools, dir, name, "uas_noanswer.xml").await
    }

    async fn start(tools: &Tools, dir: &Path, name: &str, scenario: &str) -> Callee {
        let log = dir.join(format!("{name}.log"));
        for attempt in 0..3 {
            let port = free_udp_port();
            let _ = fs::remove_file(&log);
            let mut cmd = Command::new(&tools.sipp);
            cmd.arg("-sf")
                .arg(kit_dir().join(scenario))
                .args(["-i", "127.0.0.1", "-p", &port.to_string()])
                // a held call ends by itself after 5 minutes at most
                .args([
                    "-recv_timeout",
                    "300000",
                    "-nostdin",
                    "-trace_logs",
                    "-log_file",
                ])
                .arg(&log)
                .args(["-trace_err", "-error_file"])
                .arg(dir.join(format!("{name}.errors")));
            let mut proc = Proc::spawn(&format!("sipp-{name}-{attempt}"), dir, &mut cmd);
            let until = Instant::now() + DEADLINE;
            loop {
                if let Some(status) = proc.exited() {
                    let out = tail(&proc.output, 4000);
                    if attempt < 2 {
                        break; // most likely the port was taken meanwhile: another one
                    }
                    panic!("sipp callee {name} exited ({status}) at start:\n{out}");
                }
                if udp_port_taken(port) {
                    return Callee {
                        name: name.to_owned(),
                        port,
                        log,
                        proc,
                    };
                }
                assert!(
                    Instant::now() < until,
                    "sipp callee {name} did not bind 127.0.0.1:{port}:\n{}",
                    tail(&proc.output, 4000)
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        unreachable!("three attempts")
    }

    /// Where it is reached: `sip:<name>@127.0.0.1:<port>`.
    pub fn uri(&self) -> String {
        format!("sip:{}@127.0.0.1:{}", self.name, self.port)
    }

    /// Its log so far.
    pub fn events(&self) -> Vec<CalleeEvent> {
        fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| {
                let mut w = l.split_whitespace();
                match (w.next(), w.next(), w.next()) {
                    (Some("start"), Some(id), user) => Some(CalleeEvent::Start(
                        id.to_owned(),
                        user.unwrap_or_default().to_owned(),
                    )),
                    (Some("end"), Some(id), _) => Some(CalleeEvent::End(id.to_owned())),
                    (Some("canceled"), Some(id), _) => Some(CalleeEvent::Canceled(id.to_owned())),
                    _ => None,
                }
            })
            .collect()
    }

    /// The calls that reached it (their Call-IDs, in arrival order).
    pub fn calls(&self) -> Vec<String> {
        self.events()
            .into_iter()
            .filter_map(|e| match e {
                CalleeEvent::Start(id, _) => Some(id),
                _ => None,
            })
            .collect()
    }

    /// The calls it has up now (arrived, neither ended nor canceled).
    pub fn up(&self) -> Vec<String> {
        let mut up: Vec<String> = Vec::new();
        for e in self.events() {
            match e {
                CalleeEvent::Start(id, _) => up.push(id),
                CalleeEvent::End(id) | CalleeEvent::Canceled(id) => up.retain(|x| *x != id),
            }
        }
        up
    }

    /// The most calls it ever had up at once, by the order of its own log (no clock).
    pub fn max_concurrent(&self) -> usize {
        let (mut now, mut max) = (0usize, 0usize);
        for e in self.events() {
            match e {
                CalleeEvent::Start(..) => {
                    now += 1;
                    max = max.max(now);
                }
                CalleeEvent::End(_) | CalleeEvent::Canceled(_) => now = now.saturating_sub(1),
            }
        }
        max
    }

    /// Hangs up `call_id` (the callee sends BYE): an INFO with that Call-ID straight to its
    /// port, repeated until its log says it ended the call.
    pub async fn release(&self, call_id: &str) {
        let sock = tokio::net::UdpSocket::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let me = sock.local_addr().unwrap().port();
        let until = Instant::now() + DEADLINE;
        loop {
            let n = RELEASES.fetch_add(1, Ordering::Relaxed);
            let msg = format!(
                "INFO sip:{name}@127.0.0.1:{port} SIP/2.0\r\n\
                 Via: SIP/2.0/UDP 127.0.0.1:{me};branch=z9hG4bK-release-{n}\r\n\
                 From: <sip:test@127.0.0.1:{me}>;tag=release\r\n\
                 To: <sip:{name}@127.0.0.1:{port}>\r\n\
                 Call-ID: {call_id}\r\n\
                 CSeq: 1 INFO\r\n\
                 Max-Forwards: 70\r\n\
                 Content-Length: 0\r\n\r\n",
                name = self.name,
                port = self.port
            );
            sock.send_to(msg.as_bytes(), ("127.0.0.1", self.port))
                .await
                .expect("send INFO");
            for _ in 0..20 {
                if self
                    .events()
                    .iter()
                    .any(|e| *e == CalleeEvent::End(call_id.to_owned()))
                {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            assert!(
                Instant::now() < until,
                "callee {} never hung up {call_id}; its log:\n{}",
                self.name,
                tail(&self.log, 4000)
            );
        }
    }

    /// Hangs up every call it has up.
    pub async fn release_all(&self) {
        for id in self.up() {
            self.release(&id).await;
        }
    }

    /// Its log and errors, for failure messages.
    pub fn report(&self) -> String {
        format!(
            "callee {} ({}):\n{}\nerrors:\n{}",
            self.name,
            self.uri(),
            tail(&self.log, 3000),
            tail(&self.proc.output, 1000)
        )
    }
}

/// How a placed call came out at the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub call_id: String,
    pub did: String,
    /// 200, or the final refusal's code.
    pub code: u16,
}

impl Outcome {
    pub fn answered(&self) -> bool {
        self.code == 200
    }
}

/// A SIPp caller placing calls through Kamailio. Its calls stay up until their callees hang up.
pub struct Caller {
    pub name: String,
    log: PathBuf,
    errors: PathBuf,
    proc: Proc,
    pub calls: usize,
}

static CALLERS: AtomicU32 = AtomicU32::new(0);

impl Caller {
    /// Places one call per `(did, caller number)`, all at once (up to `limit` at a time, in
    /// order), to Kamailio on `proxy_port`.
    pub async fn place(
        tools: &Tools,
        dir: &Path,
        proxy_port: u16,
        calls: &[(&str, &str)],
        limit: usize,
    ) -> Caller {
        let n = CALLERS.fetch_add(1, Ordering::Relaxed);
        let name = format!("caller-{n}");
        let csv = dir.join(format!("{name}.csv"));
        let mut text = String::from("SEQUENTIAL\n");
        for (did, from) in calls {
            text.push_str(&format!("{did};{from}\n"));
        }
        fs::write(&csv, text).expect("write the calls' file");
        let log = dir.join(format!("{name}.log"));
        let errors = dir.join(format!("{name}.errors"));
        for attempt in 0..3 {
            // SIPp's own default is 5060 when free: always an explicit free port
            let port = free_udp_port();
            let mut cmd = Command::new(&tools.sipp);
            cmd.arg("-sf")
                .arg(kit_dir().join("uac.xml"))
                .arg("-inf")
                .arg(&csv)
                .args(["-i", "127.0.0.1", "-p", &port.to_string()])
                .arg(format!("127.0.0.1:{proxy_port}"))
                .args(["-m", &calls.len().to_string()])
                .args(["-l", &limit.to_string()])
                .args(["-r", "50", "-recv_timeout", "300000", "-nostdin"])
                .args(["-trace_logs", "-log_file"])
                .arg(&log)
                .args(["-trace_err", "-error_file"])
                .arg(&errors);
            let mut proc = Proc::spawn(&format!("{name}-{attempt}"), dir, &mut cmd);
            let until = Instant::now() + DEADLINE;
            loop {
                if udp_port_taken(port) || !outcomes_of(&log).is_empty() {
                    return Caller {
                        name,
                        log,
                        errors,
                        proc,
                        calls: calls.len(),
                    };
                }
                if let Some(status) = proc.exited() {
                    if attempt < 2 && outcomes_of(&log).is_empty() {
                        break; // most likely the port was taken meanwhile: another one
                    }
                    panic!(
                        "sipp caller exited ({status}) at start:\n{}",
                        tail(&proc.output, 4000)
                    );
                }
                assert!(
                    Instant::now() < until,
                    "sipp caller did not bind 127.0.0.1:{port}:\n{}",
                    tail(&proc.output, 4000)
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        unreachable!("three attempts")
    }

    /// The outcomes so far, in the order they came.
    pub fn outcomes(&self) -> Vec<Outcome> {
        outcomes_of(&self.log)
    }

    /// Waits until `n` calls have an outcome; answers them.
    pub async fn wait_outcomes(&mut self, n: usize) -> Vec<Outcome> {
        let log = self.log.clone();
        let errors = self.errors.clone();
        let output = self.proc.output.clone();
        let mut ended: Option<ExitStatus> = None;
        let proc = &mut self.proc;
        wait_for(
            &format!("{n} call outcome(s) at {}", self.name),
            || {
                let o = outcomes_of(&log);
                if o.len() >= n {
                    return Some(o);
                }
                // A caller that ended without them never gives them.
                if ended.is_none() {
                    ended = proc.exited();
                } else {
                    panic!(
                        "caller ended ({:?}) with {} outcome(s) of {n}:\nlog:\n{}\nerrors:\n{}\n\
                         output:\n{}",
                        ended,
                        o.len(),
                        tail(&log, 3000),
                        tail(&errors, 3000),
                        tail(&output, 3000)
                    );
                }
                None
            },
            || {
                format!(
                    "log:\n{}\nerrors:\n{}",
                    tail(&log, 3000),
                    tail(&errors, 3000)
                )
            },
        )
        .await
    }

    /// Waits until every call is over and SIPp has exited; asserts it exited 0 (every call
    /// followed the scenario: an unexpected message or a lost reply fails it).
    pub async fn finish(mut self) -> Vec<Outcome> {
        let name = self.name.clone();
        let proc = &mut self.proc;
        let status = wait_for(
            &format!("{name} to end (every call hung up)"),
            || proc.exited(),
            String::new,
        )
        .await;
        assert!(
            status.success(),
            "{name} exited {status}:\nlog:\n{}\nerrors:\n{}\noutput:\n{}",
            tail(&self.log, 3000),
            tail(&self.errors, 3000),
            tail(&self.proc.output, 3000)
        );
        self.outcomes()
    }
}

fn outcomes_of(log: &Path) -> Vec<Outcome> {
    fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            match w.as_slice() {
                ["answered" | "refused", id, did, code] => Some(Outcome {
                    call_id: (*id).to_owned(),
                    did: (*did).to_owned(),
                    code: code.parse().unwrap_or(0),
                }),
                _ => None,
            }
        })
        .collect()
}

/// Which callee each call reached (by Call-ID), from their logs.
pub fn reached(callees: &[&Callee]) -> HashMap<String, String> {
    let mut m = HashMap::new();
    for c in callees {
        for id in c.calls() {
            m.insert(id, c.name.clone());
        }
    }
    m
}
