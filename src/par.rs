//! The one worker pool: a reader feeds items to `jobs` workers and the results come back
//! to the caller in the order they were fed, with at most `in_flight` items between the
//! reader and the writer, so memory stays bounded whatever the input's size. `anonymize`
//! (a dump's COPY batches through the plan) and `verify` (batches of rows scanned) both
//! run on it.
//!
//! Written on std's channels and scoped threads rather than a crate (crossbeam-channel,
//! rayon): one bounded queue of work shared behind a mutex and a token per item in
//! flight are all it needs, and batches are large (about 256 kB), so the queue is never
//! the bottleneck.

use std::collections::BTreeMap;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Mutex;

/// A worker's result, or the panic it stopped with.
type Done<R> = Result<R, Box<dyn std::any::Any + Send>>;

/// The writer has stopped (it failed): the reader should stop too.
#[derive(Debug)]
pub struct Stopped;

/// What the reader feeds the pool through.
pub struct Feed<T, R> {
    seq: u64,
    tokens: Receiver<()>,
    work: SyncSender<(u64, T)>,
    done: SyncSender<(u64, Done<R>)>,
}

impl<T, R> Feed<T, R> {
    /// An item for a worker; its result reaches the writer in feeding order. Waits while
    /// `in_flight` items are between the reader and the writer.
    pub fn work(&mut self, item: T) -> Result<(), Stopped> {
        self.tokens.recv().map_err(|_| Stopped)?;
        self.work.send((self.seq, item)).map_err(|_| Stopped)?;
        self.seq += 1;
        Ok(())
    }

    /// A result that needs no worker (a table's header, a run of SQL), handed to the
    /// writer in its place among the others.
    pub fn pass(&mut self, result: R) -> Result<(), Stopped> {
        self.tokens.recv().map_err(|_| Stopped)?;
        self.done
            .send((self.seq, Ok(result)))
            .map_err(|_| Stopped)?;
        self.seq += 1;
        Ok(())
    }
}

/// Runs `read` on a thread of its own, feeding items; `work` on `jobs` threads (at least
/// one); `write` on this thread, with the results in feeding order. The first error of
/// `write` stops the reader and is the one returned; otherwise `read`'s result is.
///
/// A panic in a worker stops the run like an error (the reader sees the writer gone) and
/// is raised again here once every thread has stopped; so is one in the reader.
pub fn ordered<T, R, O, E>(
    jobs: usize,
    in_flight: usize,
    read: impl FnOnce(&mut Feed<T, R>) -> Result<O, E> + Send,
    work: impl Fn(T) -> R + Sync,
    mut write: impl FnMut(R) -> Result<(), E>,
) -> Result<O, E>
where
    T: Send,
    R: Send,
    O: Send,
    E: Send,
{
    let in_flight = in_flight.max(1);
    let (tokens_tx, tokens_rx) = sync_channel::<()>(in_flight);
    for _ in 0..in_flight {
        tokens_tx.send(()).expect("the channel has room");
    }
    // a token is taken for every item fed, so neither queue ever holds more than
    // `in_flight` items and the reader never waits on a full one while holding a token
    let (work_tx, work_rx) = sync_channel::<(u64, T)>(in_flight);
    let work_rx = Mutex::new(work_rx);
    let (done_tx, done_rx) = sync_channel::<(u64, Done<R>)>(in_flight);
    std::thread::scope(|scope| {
        let mut feed = Feed {
            seq: 0,
            tokens: tokens_rx,
            work: work_tx,
            done: done_tx.clone(),
        };
        let reader = scope.spawn(move || read(&mut feed));
        let work = &work;
        for _ in 0..jobs.max(1) {
            let (work_rx, done_tx) = (&work_rx, done_tx.clone());
            scope.spawn(move || loop {
                let next = work_rx.lock().map(|rx| rx.recv());
                let Ok(Ok((seq, item))) = next else { return };
                // a panic goes to the writer in the item's place, which stops the run:
                // waiting for a result that never comes would hang it
                let result = catch_unwind(AssertUnwindSafe(|| work(item)));
                let panicked = result.is_err();
                // once the writer has stopped, items still queued are dropped
                if done_tx.send((seq, result)).is_err() || panicked {
                    return;
                }
            });
        }
        drop(done_tx);
        let mut panicked = None;
        let written = (|| {
            let mut pending = BTreeMap::new();
            let mut next = 0u64;
            for (seq, result) in done_rx.iter() {
                pending.insert(seq, result);
                while let Some(result) = pending.remove(&next) {
                    match result {
                        Ok(result) => write(result)?,
                        Err(panic) => {
                            panicked = Some(panic);
                            return Ok(());
                        }
                    }
                    next += 1;
                    let _ = tokens_tx.send(());
                }
            }
            Ok(())
        })();
        // the reader sees the writer gone at its next item
        drop(tokens_tx);
        drop(done_rx);
        let read = match reader.join() {
            Ok(read) => read,
            Err(panic) => resume_unwind(panic),
        };
        if let Some(panic) = panicked {
            resume_unwind(panic);
        }
        written.and(read)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_come_back_in_feeding_order_whatever_the_workers_take() {
        let mut got = Vec::new();
        let read = ordered(
            3,
            4,
            |feed: &mut Feed<u64, u64>| {
                for i in 0..200u64 {
                    if i % 10 == 0 {
                        feed.pass(1_000 + i).map_err(|_| "stopped")?;
                    } else {
                        feed.work(i).map_err(|_| "stopped")?;
                    }
                }
                Ok::<_, &str>("read all")
            },
            |i| {
                // later items finish first now and then
                std::thread::sleep(std::time::Duration::from_micros((200 - i) % 7 * 50));
                i * 2
            },
            |r| {
                got.push(r);
                Ok(())
            },
        );
        assert_eq!(read, Ok("read all"));
        let want: Vec<u64> = (0..200)
            .map(|i| if i % 10 == 0 { 1_000 + i } else { i * 2 })
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn a_failing_writer_stops_the_reader_and_its_error_is_the_one_returned() {
        let fed = std::sync::atomic::AtomicU64::new(0);
        let result = ordered(
            2,
            4,
            |feed: &mut Feed<u64, u64>| {
                for i in 0..1_000_000u64 {
                    if feed.work(i).is_err() {
                        return Err("the reader saw the writer stop");
                    }
                    fed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                Ok(())
            },
            |i| i,
            |r| {
                if r == 10 {
                    Err("the writer failed")
                } else {
                    Ok(())
                }
            },
        );
        assert_eq!(result, Err("the writer failed"));
        // bounded: the reader got at most `in_flight` items past the failure
        assert!(fed.load(std::sync::atomic::Ordering::Relaxed) <= 11 + 4);
    }

    #[test]
    fn a_panicking_worker_stops_the_run_and_its_panic_comes_back_rather_than_a_hang() {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let run = catch_unwind(|| {
                ordered(
                    2,
                    4,
                    |feed: &mut Feed<u64, u64>| {
                        for i in 0..1_000_000u64 {
                            feed.work(i).map_err(|_| "stopped")?;
                        }
                        Ok::<_, &str>(())
                    },
                    |i| {
                        assert!(i != 50, "injected for a test: a worker panics");
                        i
                    },
                    |_| Ok(()),
                )
            });
            let _ = tx.send(run.is_err());
        });
        let panicked = rx
            .recv_timeout(std::time::Duration::from_secs(20))
            .expect("the run came back instead of hanging");
        assert!(panicked, "the worker's panic is raised again by the caller");
    }

    #[test]
    fn a_failing_reader_is_returned_after_what_it_fed_is_written() {
        let mut got = Vec::new();
        let result = ordered(
            2,
            2,
            |feed: &mut Feed<u64, u64>| {
                for i in 0..5 {
                    feed.work(i).map_err(|_| "stopped")?;
                }
                Err::<(), _>("the input ends mid-row")
            },
            |i| i,
            |r| {
                got.push(r);
                Ok(())
            },
        );
        assert_eq!(result, Err("the input ends mid-row"));
        assert_eq!(got, [0, 1, 2, 3, 4]);
    }
}
