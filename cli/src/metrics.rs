//! `--metrics [ADDR]`: a job's figures as Prometheus metrics over HTTP, for
//! Prometheus (and Grafana through it) to scrape while the job runs.
//!
//! The `prometheus` crate keeps the metrics and writes its text format;
//! hyper serves `GET /metrics` on a one-thread tokio runtime of its own,
//! within bounds a client cannot push (any client can reach the port):
//! [`MAX_REQUEST_BYTES`] of request head, [`HEADER_READ_TIMEOUT`] to send
//! it, [`MAX_CONNECTIONS`] at once (more are closed on arrival),
//! [`CONNECTION_LIFETIME`] per connection, however many requests it
//! pipelines. When the job ends the server stops: requests in flight get
//! [`SHUTDOWN_GRACE`] to finish, then every connection is closed. The address
//! is loopback unless the user gives another; port 0 takes a free port, and
//! the bound address is written on standard error either way:
//! `gst-dreamsim: metrics on http://127.0.0.1:9464/metrics`.
//!
//! Metrics (every one with a `stream` label: `input` for `monitor` and
//! `distances`, the log's metric name `dreamsim`, `dreamsim_1`, ... for
//! `compare`):
//!
//! | name | type | what |
//! |---|---|---|
//! | `dreamsim_frames_analysed_total` | counter | frames the model analysed |
//! | `dreamsim_reference_distance` | histogram | each frame's distance to the reference |
//! | `dreamsim_last_reference_distance` | gauge | the latest of those |
//! | `dreamsim_frame_distance` | histogram | each frame's distance to the previous analysed frame (`monitor`, `distances`) |
//! | `dreamsim_alerts_total` | counter | alerts raised (`monitor`; `compare`: frames over `--fail-above`) |
//! | `dreamsim_inference_seconds_total` | counter | time in the model (the element's `stats`), no `stream` label |
//! | `dreamsim_preprocess_seconds_total` | counter | time preparing frames for it, no `stream` label |

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};

use gst::prelude::*;
use prometheus::{
    Counter, Encoder, Gauge, GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounter,
    IntCounterVec, Opts, Registry, TextEncoder,
};

use crate::{Error, PROGRAM};

/// Where `--metrics` without a value serves: loopback, the port of
/// Prometheus's node exporter range that no well-known exporter uses.
pub const DEFAULT_ADDRESS: &str = "127.0.0.1:9464";

/// Most bytes of a request's head (request line and headers) the server
/// reads; a longer one is answered 431 and its connection closed. (hyper's
/// smallest read buffer is 8 KiB; a scrape's head is a few hundred bytes.)
pub const MAX_REQUEST_BYTES: usize = 16 * 1024;

/// Time a client has to send a request's head once it started.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(5);

/// Connections served at once; one more is closed as soon as it is
/// accepted, so half-open clients cost a socket each, never a thread.
pub const MAX_CONNECTIONS: usize = 32;

/// Longest life of one connection, whatever it sends (keep-alive and
/// pipelined requests included): Prometheus reconnects for its next scrape.
pub const CONNECTION_LIFETIME: Duration = Duration::from_secs(30);

/// At the end of the job, the time requests in flight get to finish.
pub const SHUTDOWN_GRACE: Duration = Duration::from_millis(500);

/// Histogram buckets for DreamSim distances (a cosine distance: 0
/// identical, most pairs of unrelated pictures under 1, at most 2).
const DISTANCE_BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 1.5, 2.0,
];

/// The option, flattened into the jobs that take it.
#[derive(Debug, Clone, clap::Args)]
pub struct MetricsArgs {
    /// Serve Prometheus metrics at http://ADDR/metrics while the job runs
    /// [ADDR default: 127.0.0.1:9464; port 0: a free port, written on stderr]
    #[arg(long, value_name = "ADDR", num_args = 0..=1,
          default_missing_value = DEFAULT_ADDRESS, help_heading = "Output options")]
    pub metrics: Option<SocketAddr>,
}

/// The metrics of one job and the server that exposes them.
pub struct Metrics {
    frames: IntCounterVec,
    reference_distance: HistogramVec,
    last_reference_distance: GaugeVec,
    frame_distance: HistogramVec,
    alerts: IntCounterVec,
    engine: Arc<EngineTimes>,
    /// Where the server listens (the port chosen, for port 0).
    #[cfg_attr(not(test), allow(dead_code))] // Read by the tests.
    local_addr: SocketAddr,
    /// Tells the server to stop (on drop).
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

/// The element whose `stats` give the time counters, read at each scrape.
struct EngineTimes {
    element: Mutex<Option<gst::Element>>,
    inference: Counter,
    preprocess: Counter,
}

impl EngineTimes {
    /// Brings the counters up to the element's `stats`.
    fn refresh(&self) {
        let element = self.element.lock().unwrap_or_else(|e| e.into_inner());
        let Some(element) = element.as_ref() else {
            return;
        };
        let stats: gst::Structure = element.property("stats");
        for (field, counter) in [
            ("inference-time", &self.inference),
            ("preprocess-time", &self.preprocess),
        ] {
            if let Ok(ns) = stats.get::<u64>(field) {
                let delta = ns as f64 / 1e9 - counter.get();
                if delta > 0.0 {
                    counter.inc_by(delta);
                }
            }
        }
    }
}

fn registered<T: prometheus::core::Collector + Clone + 'static>(
    registry: &Registry,
    metric: prometheus::Result<T>,
) -> T {
    let metric = metric.expect("valid metric options");
    registry
        .register(Box::new(metric.clone()))
        .expect("metric names are unique");
    metric
}

impl Metrics {
    /// Starts serving at `address` when given; `None` without `--metrics`.
    pub fn start(args: &MetricsArgs) -> Result<Option<Self>, Error> {
        args.metrics.map(Self::serve).transpose()
    }

    /// Registers the metrics and serves them at `address`.
    pub fn serve(address: SocketAddr) -> Result<Self, Error> {
        let registry = Registry::new();
        let stream = &["stream"];
        let distance_opts = |name: &str, help: &str| {
            HistogramOpts::new(name, help).buckets(DISTANCE_BUCKETS.to_vec())
        };
        let frames = registered(
            &registry,
            IntCounterVec::new(
                Opts::new(
                    "dreamsim_frames_analysed_total",
                    "Frames the model analysed",
                ),
                stream,
            ),
        );
        let reference_distance = registered(
            &registry,
            HistogramVec::new(
                distance_opts(
                    "dreamsim_reference_distance",
                    "DreamSim distance of each analysed frame to the reference",
                ),
                stream,
            ),
        );
        let last_reference_distance = registered(
            &registry,
            GaugeVec::new(
                Opts::new(
                    "dreamsim_last_reference_distance",
                    "DreamSim distance of the latest analysed frame to the reference",
                ),
                stream,
            ),
        );
        let frame_distance = registered(
            &registry,
            HistogramVec::new(
                distance_opts(
                    "dreamsim_frame_distance",
                    "DreamSim distance of each analysed frame to the previous analysed frame",
                ),
                stream,
            ),
        );
        let alerts = registered(
            &registry,
            IntCounterVec::new(
                Opts::new(
                    "dreamsim_alerts_total",
                    "Alerts raised: distance to the reference above the limit",
                ),
                stream,
            ),
        );
        let engine = Arc::new(EngineTimes {
            element: Mutex::new(None),
            inference: registered(
                &registry,
                Counter::new(
                    "dreamsim_inference_seconds_total",
                    "Seconds spent running the model",
                ),
            ),
            preprocess: registered(
                &registry,
                Counter::new(
                    "dreamsim_preprocess_seconds_total",
                    "Seconds spent preparing frames for the model",
                ),
            ),
        });
        let cannot_listen = |e: std::io::Error| {
            Error::Pipeline(format!("--metrics {address}: cannot listen there: {e}"))
        };
        // Bound here, before the job starts, so that a taken port is the
        // job's error; served on the thread below.
        let listener = std::net::TcpListener::bind(address).map_err(cannot_listen)?;
        listener.set_nonblocking(true).map_err(cannot_listen)?;
        let local_addr = listener.local_addr().map_err(cannot_listen)?;
        eprintln!("{PROGRAM}: metrics on http://{local_addr}/metrics");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()
            .map_err(|e| Error::Pipeline(format!("--metrics: no runtime to serve: {e}")))?;
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let thread = {
            let engine = engine.clone();
            std::thread::Builder::new()
                .name("metrics".into())
                .spawn(move || {
                    runtime.block_on(serve_until(listener, stopped, registry, engine));
                    // Dropping the runtime closes every connection left.
                })
                .map_err(|e| Error::Pipeline(format!("--metrics: no thread to serve: {e}")))?
        };
        Ok(Self {
            frames,
            reference_distance,
            last_reference_distance,
            frame_distance,
            alerts,
            engine,
            local_addr,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// The element whose `stats` (`inference-time`, `preprocess-time`)
    /// feed the time counters.
    pub fn watch_element(&self, element: &gst::Element) {
        *self
            .engine
            .element
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(element.clone());
    }

    /// The metrics of `stream` (its label's value), looked up once for
    /// the per-frame updates; `dreamsim_frame_distance` only for a job that
    /// measures the distance to the previous frame (`previous`).
    pub fn stream(&self, stream: &str, previous: bool) -> StreamMetrics {
        let label = &[stream];
        StreamMetrics {
            frames: self.frames.with_label_values(label),
            reference_distance: self.reference_distance.with_label_values(label),
            last_reference_distance: self.last_reference_distance.with_label_values(label),
            frame_distance: previous.then(|| self.frame_distance.with_label_values(label)),
            alerts: self.alerts.with_label_values(label),
        }
    }
}

/// One stream's metrics (a `stream` label's value).
pub struct StreamMetrics {
    frames: IntCounter,
    reference_distance: Histogram,
    last_reference_distance: Gauge,
    frame_distance: Option<Histogram>,
    alerts: IntCounter,
}

impl StreamMetrics {
    /// One analysed frame, with its distances when it has them.
    pub fn frame(&self, reference_distance: Option<f64>, distance: Option<f64>) {
        self.frames.inc();
        if let Some(d) = reference_distance {
            self.reference_distance.observe(d);
            self.last_reference_distance.set(d);
        }
        if let (Some(d), Some(h)) = (distance, &self.frame_distance) {
            h.observe(d);
        }
    }

    /// An alert raised.
    pub fn alert(&self) {
        self.alerts.inc();
    }
}

impl Drop for Metrics {
    fn drop(&mut self) {
        // The server ends within SHUTDOWN_GRACE whatever its clients do.
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Accepts connections until `stopped`, each served within the bounds in
/// the module docs; then gives requests in flight [`SHUTDOWN_GRACE`].
async fn serve_until(
    listener: std::net::TcpListener,
    mut stopped: tokio::sync::oneshot::Receiver<()>,
    registry: Registry,
    engine: Arc<EngineTimes>,
) {
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("{PROGRAM}: --metrics: cannot serve: {e}");
            return;
        }
    };
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let scrape = Arc::new(Scrape {
        registry,
        engine,
        encoder: TextEncoder::new(),
    });
    loop {
        let stream = tokio::select! {
            _ = &mut stopped => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                // Out of file descriptors and the like: wait, never spin.
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            drop(stream);
            continue;
        };
        let scrape = scrape.clone();
        let connection = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(HEADER_READ_TIMEOUT)
            .max_buf_size(MAX_REQUEST_BYTES)
            .serve_connection(
                TokioIo::new(stream),
                hyper::service::service_fn(move |request| {
                    let scrape = scrape.clone();
                    async move { Ok::<_, Infallible>(scrape.respond(&request)) }
                }),
            );
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            let _ = tokio::time::timeout(CONNECTION_LIFETIME, connection).await;
            drop(slot);
        });
    }
    drop(listener);
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown()).await;
}

/// What a request is answered with.
struct Scrape {
    registry: Registry,
    engine: Arc<EngineTimes>,
    encoder: TextEncoder,
}

impl Scrape {
    /// `/metrics` with the text format, anything else 404.
    fn respond<B>(&self, request: &Request<B>) -> Response<Full<Bytes>> {
        let reply = |status: StatusCode, content_type: &str, body: Vec<u8>| {
            let mut response = Response::new(Full::new(Bytes::from(body)));
            *response.status_mut() = status;
            if let Ok(value) = content_type.parse() {
                response
                    .headers_mut()
                    .insert(hyper::header::CONTENT_TYPE, value);
            }
            response
        };
        if request.uri().path() != "/metrics" {
            return reply(
                StatusCode::NOT_FOUND,
                "text/plain",
                b"Not found: the metrics are at /metrics\n".to_vec(),
            );
        }
        self.engine.refresh();
        let mut body = Vec::new();
        match self.encoder.encode(&self.registry.gather(), &mut body) {
            Ok(()) => reply(StatusCode::OK, self.encoder.format_type(), body),
            Err(e) => reply(
                StatusCode::INTERNAL_SERVER_ERROR,
                "text/plain",
                e.to_string().into_bytes(),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    fn get(address: &str, path: &str) -> String {
        let mut s = std::net::TcpStream::connect(address).unwrap();
        write!(s, "GET {path} HTTP/1.0\r\nHost: {address}\r\n\r\n").unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).unwrap();
        text
    }

    #[test]
    fn serves_the_text_format_on_loopback() {
        let m = Metrics::serve("127.0.0.1:0".parse().unwrap()).unwrap();
        let address = m.local_addr.to_string();
        let input = m.stream("input", true);
        input.frame(Some(0.25), Some(0.01));
        input.frame(Some(0.5), None);
        input.alert();
        let text = get(&address, "/metrics");
        assert!(text.starts_with("HTTP/1.0 200"), "{text}");
        assert!(text.contains("text/plain; version=0.0.4"), "{text}");
        for line in [
            "# HELP dreamsim_frames_analysed_total Frames the model analysed",
            "# TYPE dreamsim_frames_analysed_total counter",
            "dreamsim_frames_analysed_total{stream=\"input\"} 2",
            "# TYPE dreamsim_reference_distance histogram",
            "dreamsim_reference_distance_bucket{stream=\"input\",le=\"0.3\"} 1",
            "dreamsim_reference_distance_bucket{stream=\"input\",le=\"0.5\"} 2",
            "dreamsim_reference_distance_sum{stream=\"input\"} 0.75",
            "dreamsim_last_reference_distance{stream=\"input\"} 0.5",
            "dreamsim_frame_distance_count{stream=\"input\"} 1",
            "dreamsim_alerts_total{stream=\"input\"} 1",
            "# TYPE dreamsim_inference_seconds_total counter",
        ] {
            assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
        }
        assert!(get(&address, "/").starts_with("HTTP/1.0 404"));
    }

    /// Threads of this process.
    fn threads() -> usize {
        std::fs::read_dir("/proc/self/task").unwrap().count()
    }

    #[test]
    fn a_header_without_end_is_cut_off() {
        let m = Metrics::serve("127.0.0.1:0".parse().unwrap()).unwrap();
        let mut s = std::net::TcpStream::connect(m.local_addr).unwrap();
        s.set_write_timeout(Some(Duration::from_secs(10))).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(b"GET /metrics HTTP/1.1\r\nX-Endless: ")
            .unwrap();
        // Up to 64 MiB of one header: far past what the server reads and
        // what the kernel's buffers hold, if it kept reading.
        let chunk = [b'a'; 64 * 1024];
        let mut sent = 0usize;
        let mut refused = false;
        while sent < 64 << 20 {
            if s.write_all(&chunk).is_err() {
                refused = true;
                break;
            }
            sent += chunk.len();
        }
        let mut answer = Vec::new();
        let _ = s.read_to_end(&mut answer);
        let answer = String::from_utf8_lossy(&answer);
        assert!(
            refused || answer.starts_with("HTTP/1.1 431"),
            "the server read {sent} bytes of one header and answered {answer:?}"
        );
        assert!(sent < 64 << 20, "the server kept reading");
    }

    #[test]
    fn half_sent_requests_open_no_thread_each_and_are_bounded() {
        let m = Metrics::serve("127.0.0.1:0".parse().unwrap()).unwrap();
        let before = threads();
        let mut held = Vec::new();
        for _ in 0..400 {
            let mut s = std::net::TcpStream::connect(m.local_addr).unwrap();
            s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
                .unwrap();
            held.push(s);
        }
        // Beyond MAX_CONNECTIONS, the server closes them on arrival.
        let mut closed = 0;
        let mut open = 0;
        for s in &mut held {
            s.set_read_timeout(Some(Duration::from_millis(300)))
                .unwrap();
            let mut byte = [0u8; 1];
            match s.read(&mut byte) {
                Ok(0) => closed += 1,
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => closed += 1,
                _ => {
                    open += 1;
                    if open > MAX_CONNECTIONS + 8 {
                        break;
                    }
                }
            }
        }
        assert!(
            open <= MAX_CONNECTIONS,
            "{open} half-sent requests held open ({closed} closed)"
        );
        assert!(
            threads() <= before + 2,
            "{} threads for 400 clients",
            threads() - before
        );
        // Once they go, a scrape is served.
        drop(held);
        let address = m.local_addr.to_string();
        let mut text = String::new();
        for _ in 0..50 {
            text = get(&address, "/metrics");
            if text.starts_with("HTTP/1.0 200") {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        assert!(text.starts_with("HTTP/1.0 200"), "{text}");
    }

    #[test]
    fn pipelined_requests_are_answered_and_do_not_keep_the_job_alive() {
        let m = Metrics::serve("127.0.0.1:0".parse().unwrap()).unwrap();
        let mut s = std::net::TcpStream::connect(m.local_addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let writer = {
            let mut s = s.try_clone().unwrap();
            std::thread::spawn(move || {
                let request = b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
                // Requests without end (bounded here), never reading the answers.
                for _ in 0..200_000 {
                    if s.write_all(request).is_err() {
                        break;
                    }
                }
            })
        };
        let mut answers = Vec::new();
        let mut buffer = [0u8; 64 * 1024];
        while answers
            .windows(15)
            .filter(|w| w[..] == b"HTTP/1.1 200 OK"[..])
            .count()
            < 3
        {
            let n = s.read(&mut buffer).unwrap();
            assert!(n > 0, "closed before three answers");
            answers.extend_from_slice(&buffer[..n]);
        }
        // The job ends while the client still sends and never reads.
        let (done, ended) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            drop(m);
            done.send(()).unwrap();
        });
        assert!(
            ended.recv_timeout(Duration::from_secs(20)).is_ok(),
            "the server kept the job alive"
        );
        writer.join().unwrap();
    }
}
