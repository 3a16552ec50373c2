//! The ordered queue between the `dreamsim` element's streaming thread and
//! its inference thread, and the decision of what to run next.
//!
//! Buffers and serialized events leave in the order they came. Analysed
//! buffers are grouped into batches: a batch is taken when it is full, when
//! a serialized event (caps, segment, EOS...) follows it, or when its first
//! frame has waited `max_latency`. Generic over the item types so the
//! decisions are unit-tested without GStreamer.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// One entry of the queue.
#[derive(Debug)]
pub enum Item<B, E> {
    /// A buffer; `analyse` says whether the model runs on it.
    Buffer {
        /// The buffer.
        buffer: B,
        /// Whether it is analysed (else it passes without meta).
        analyse: bool,
        /// When it was queued.
        arrived: Instant,
        /// Its size, counted against the element's byte bound.
        bytes: u64,
    },
    /// A serialized event.
    Event(E),
}

/// What the inference thread does next.
#[derive(Debug)]
pub enum Next<B, E> {
    /// Push this event downstream.
    Event(E),
    /// Run these buffers (in order; the flag says which are analysed).
    Batch(Vec<(B, bool)>),
    /// Nothing to do before this instant, unless something is queued.
    WaitUntil(Instant),
    /// Nothing queued.
    Idle,
}

/// The queue itself.
#[derive(Debug)]
pub struct ItemQueue<B, E> {
    items: VecDeque<Item<B, E>>,
    buffers: usize,
    bytes: u64,
}

impl<B, E> Default for ItemQueue<B, E> {
    fn default() -> Self {
        Self {
            items: VecDeque::new(),
            buffers: 0,
            bytes: 0,
        }
    }
}

impl<B, E> ItemQueue<B, E> {
    /// Queues a buffer of `bytes` bytes.
    pub fn push_buffer(&mut self, buffer: B, analyse: bool, bytes: u64, arrived: Instant) {
        self.buffers += 1;
        self.bytes += bytes;
        self.items.push_back(Item::Buffer {
            buffer,
            analyse,
            arrived,
            bytes,
        });
    }

    /// Queues a serialized event behind the buffers already queued.
    pub fn push_event(&mut self, event: E) {
        self.items.push_back(Item::Event(event));
    }

    /// Number of buffers queued (events are not counted: they must never
    /// be refused, or EOS could deadlock behind a full queue).
    pub fn buffers(&self) -> usize {
        self.buffers
    }

    /// Bytes of the buffers queued.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Whether nothing (buffer or event) is queued.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Drops everything (a flush).
    pub fn clear(&mut self) {
        self.items.clear();
        self.buffers = 0;
        self.bytes = 0;
    }

    /// Decides what to do next at time `now` with batches of `batch_size`
    /// analysed buffers. `room_needed`: the producer waits for bytes to be
    /// released (the byte bound), so a partial batch leaves now instead of
    /// after `max_latency`.
    pub fn next(
        &mut self,
        batch_size: usize,
        max_latency: Duration,
        now: Instant,
        room_needed: bool,
    ) -> Next<B, E> {
        let batch_size = batch_size.max(1);
        match self.items.front() {
            None => return Next::Idle,
            Some(Item::Event(_)) => {
                let Some(Item::Event(e)) = self.items.pop_front() else {
                    unreachable!("front is an event")
                };
                return Next::Event(e);
            }
            Some(Item::Buffer { .. }) => {}
        }

        // Scan the leading run of buffers.
        let mut analysed = 0;
        let mut first_arrival = None;
        let mut take = 0;
        let mut boundary = false;
        for item in &self.items {
            match item {
                Item::Event(_) => {
                    boundary = true;
                    break;
                }
                Item::Buffer {
                    analyse, arrived, ..
                } => {
                    take += 1;
                    if *analyse {
                        analysed += 1;
                        first_arrival.get_or_insert(*arrived);
                        if analysed == batch_size {
                            break;
                        }
                    }
                }
            }
        }

        let ready = analysed == batch_size
            || boundary
            || room_needed
            || analysed == 0
            || first_arrival.is_some_and(|t| now >= t + max_latency);
        if !ready {
            return Next::WaitUntil(first_arrival.expect("analysed > 0") + max_latency);
        }
        self.buffers -= take;
        let bytes = &mut self.bytes;
        Next::Batch(
            self.items
                .drain(..take)
                .map(|item| match item {
                    Item::Buffer {
                        buffer,
                        analyse,
                        bytes: b,
                        ..
                    } => {
                        *bytes -= b;
                        (buffer, analyse)
                    }
                    Item::Event(_) => unreachable!("only buffers are taken"),
                })
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Q = ItemQueue<u32, &'static str>;
    const LAT: Duration = Duration::from_millis(100);

    fn batch(n: Next<u32, &'static str>) -> Vec<(u32, bool)> {
        match n {
            Next::Batch(b) => b,
            other => panic!("expected a batch, got {other:?}"),
        }
    }

    #[test]
    fn full_batch_is_taken_at_once() {
        let t = Instant::now();
        let mut q = Q::default();
        for i in 0..5 {
            q.push_buffer(i, true, 10, t);
        }
        assert_eq!(batch(q.next(2, LAT, t, false)), [(0, true), (1, true)]);
        assert_eq!(batch(q.next(2, LAT, t, false)), [(2, true), (3, true)]);
        assert!(matches!(q.next(2, LAT, t, false), Next::WaitUntil(d) if d == t + LAT));
        assert_eq!(q.buffers(), 1);
    }

    #[test]
    fn an_event_ends_a_partial_batch_and_keeps_its_place() {
        let t = Instant::now();
        let mut q = Q::default();
        q.push_buffer(0, true, 10, t);
        q.push_event("caps");
        q.push_buffer(1, true, 10, t);
        q.push_event("eos");
        assert_eq!(batch(q.next(4, LAT, t, false)), [(0, true)]);
        assert!(matches!(q.next(4, LAT, t, false), Next::Event("caps")));
        assert_eq!(batch(q.next(4, LAT, t, false)), [(1, true)]);
        assert!(matches!(q.next(4, LAT, t, false), Next::Event("eos")));
        assert!(matches!(q.next(4, LAT, t, false), Next::Idle));
    }

    #[test]
    fn a_partial_batch_leaves_after_max_latency() {
        let t = Instant::now();
        let mut q = Q::default();
        q.push_buffer(0, true, 10, t);
        q.push_buffer(1, false, 10, t);
        assert!(matches!(
            q.next(4, LAT, t + LAT / 2, false),
            Next::WaitUntil(_)
        ));
        assert_eq!(
            batch(q.next(4, LAT, t + LAT, false)),
            [(0, true), (1, false)]
        );
    }

    #[test]
    fn buffers_that_are_not_analysed_never_wait() {
        let t = Instant::now();
        let mut q = Q::default();
        q.push_buffer(0, false, 10, t);
        q.push_buffer(1, false, 10, t);
        assert_eq!(batch(q.next(8, LAT, t, false)), [(0, false), (1, false)]);
    }

    #[test]
    fn skipped_buffers_ride_along_inside_a_batch() {
        let t = Instant::now();
        let mut q = Q::default();
        for (i, a) in [true, false, false, true, false].into_iter().enumerate() {
            q.push_buffer(i as u32, a, 10, t);
        }
        assert_eq!(
            batch(q.next(2, LAT, t, false)),
            [(0, true), (1, false), (2, false), (3, true)]
        );
        assert_eq!(batch(q.next(2, LAT, t, false)), [(4, false)]);
    }

    #[test]
    fn a_producer_waiting_for_room_takes_a_partial_batch_at_once() {
        let t = Instant::now();
        let mut q = Q::default();
        q.push_buffer(0, true, 100, t);
        q.push_buffer(1, false, 50, t);
        q.push_buffer(2, true, 100, t);
        assert_eq!(q.bytes(), 250);
        assert!(matches!(q.next(8, LAT, t, false), Next::WaitUntil(_)));
        assert_eq!(
            batch(q.next(8, LAT, t, true)),
            [(0, true), (1, false), (2, true)]
        );
        assert_eq!(q.bytes(), 0);
    }

    #[test]
    fn clear_forgets_everything() {
        let t = Instant::now();
        let mut q = Q::default();
        q.push_buffer(0, true, 10, t);
        q.push_event("segment");
        q.clear();
        assert_eq!(q.buffers(), 0);
        assert_eq!(q.bytes(), 0);
        assert!(matches!(q.next(1, LAT, t, false), Next::Idle));
    }
}
