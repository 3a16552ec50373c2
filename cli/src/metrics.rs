//! `--metrics [ADDR]`: a job's figures as Prometheus metrics over HTTP, for
//! Prometheus (and Grafana through it) to scrape while the job runs.
//!
//! The `prometheus` crate keeps the metrics and writes its text format;
//! `tiny_http` serves `GET /metrics` from a thread of its own. The address
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

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use gst::prelude::*;
use prometheus::{
    Counter, Encoder, Gauge, GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounter,
    IntCounterVec, Opts, Registry, TextEncoder,
};

use crate::{Error, PROGRAM};

/// Where `--metrics` without a value serves: loopback, the port of
/// Prometheus's node exporter range that no well-known exporter uses.
pub const DEFAULT_ADDRESS: &str = "127.0.0.1:9464";

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
    server: Arc<tiny_http::Server>,
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
        let server = tiny_http::Server::http(address).map_err(|e| {
            Error::Pipeline(format!("--metrics {address}: cannot listen there: {e}"))
        })?;
        let server = Arc::new(server);
        let bound = server
            .server_addr()
            .to_ip()
            .map_or_else(|| address.to_string(), |a| a.to_string());
        eprintln!("{PROGRAM}: metrics on http://{bound}/metrics");
        let thread = {
            let server = server.clone();
            let engine = engine.clone();
            std::thread::Builder::new()
                .name("metrics".into())
                .spawn(move || respond(&server, &registry, &engine))
                .map_err(|e| Error::Pipeline(format!("--metrics: no thread to serve: {e}")))?
        };
        Ok(Self {
            frames,
            reference_distance,
            last_reference_distance,
            frame_distance,
            alerts,
            engine,
            server,
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
        self.server.unblock();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Answers requests until the server is unblocked: `/metrics` with the
/// text format, anything else 404.
fn respond(server: &tiny_http::Server, registry: &Registry, engine: &EngineTimes) {
    let encoder = TextEncoder::new();
    let content_type = tiny_http::Header::from_bytes("Content-Type", encoder.format_type())
        .expect("a valid header");
    let mut body = Vec::new();
    for request in server.incoming_requests() {
        let path = request.url().split('?').next().unwrap_or("");
        let response = if path == "/metrics" {
            engine.refresh();
            body.clear();
            if let Err(e) = encoder.encode(&registry.gather(), &mut body) {
                let _ = request
                    .respond(tiny_http::Response::from_string(e.to_string()).with_status_code(500));
                continue;
            }
            tiny_http::Response::from_data(body.clone()).with_header(content_type.clone())
        } else {
            tiny_http::Response::from_data(b"Not found: the metrics are at /metrics\n".to_vec())
                .with_status_code(404)
        };
        let _ = request.respond(response);
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
        let address = m.server.server_addr().to_ip().unwrap().to_string();
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
}
