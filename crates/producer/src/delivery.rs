//! Kafka's answers to the records sent, handed back in send order.
//!
//! Each record goes to librdkafka with a [`Ticket`], its place in send
//! order, as the delivery opaque: a plain number, so sending allocates
//! nothing of ours. The delivery callback, on librdkafka's polling thread,
//! passes (ticket, answer) to a channel; [`InFlight`] files each answer in
//! its record's slot and gives records back only from the front, once
//! answered, so a file's position never passes a record Kafka has not
//! confirmed. librdkafka answers a partition's records in order but
//! partitions in any order, hence the slots.
//!
//! This replaced a boxed future per record (`FutureProducer`'s delivery
//! future, a one-shot channel and a `FuturesOrdered` task each): four
//! allocations per record, freed on another thread, and a wake-up each.
//!
//! The rare record sent outside that order (an order Kafka refused, sent
//! again as a dead letter before its place is confirmed) takes a
//! [side ticket](DeliveryReports::side_ticket) whose answer goes to its own
//! one-shot channel.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use rdkafka::error::KafkaError;
use rdkafka::producer::{DeliveryResult, ProducerContext};
use rdkafka::ClientContext;
use tokio::sync::{mpsc, oneshot};

/// A record's place in send order, given by [`InFlight::push`]'s caller
/// from [`InFlight::next_ticket`]; librdkafka carries it as the record's
/// delivery opaque.
pub type Ticket = usize;

/// Kafka's answer to one record: confirmed, or refused with the reason.
pub type Answer = Result<(), KafkaError>;

/// Side tickets have this bit set; in-order tickets never reach it.
const SIDE: Ticket = 1 << (Ticket::BITS - 1);

/// The producer's librdkafka context: routes each delivery report to the
/// in-order channel or to a side ticket's waiter.
pub struct DeliveryReports {
    /// Answers to in-order tickets, read by [`InFlight`].
    answers: mpsc::UnboundedSender<(Ticket, Answer)>,
    /// The next side ticket.
    next_side: AtomicUsize,
    /// Waiters for side tickets' answers.
    side: Mutex<HashMap<Ticket, oneshot::Sender<Answer>>>,
}

/// Where [`DeliveryReports`] sends the in-order answers: made into an
/// [`InFlight`] by the one loop that sends.
pub struct Answers(mpsc::UnboundedReceiver<(Ticket, Answer)>);

impl DeliveryReports {
    /// A context and the receiving end of its in-order answers.
    pub fn new() -> (DeliveryReports, Answers) {
        let (answers, receiver) = mpsc::unbounded_channel();
        let reports = DeliveryReports { answers, next_side: AtomicUsize::new(SIDE), side: Mutex::new(HashMap::new()) };
        (reports, Answers(receiver))
    }

    /// A ticket outside send order, and where its answer will arrive.
    pub fn side_ticket(&self) -> (Ticket, oneshot::Receiver<Answer>) {
        let ticket = self.next_side.fetch_add(1, Ordering::Relaxed) | SIDE;
        let (sender, receiver) = oneshot::channel();
        self.side.lock().expect("side tickets").insert(ticket, sender);
        (ticket, receiver)
    }

    /// Forgets a side ticket whose record was never sent.
    pub fn cancel_side_ticket(&self, ticket: Ticket) {
        self.side.lock().expect("side tickets").remove(&ticket);
    }
}

impl ClientContext for DeliveryReports {}

impl ProducerContext for DeliveryReports {
    type DeliveryOpaque = Ticket;

    fn delivery(&self, result: &DeliveryResult<'_>, ticket: Ticket) {
        let answer = match result {
            Ok(_) => Ok(()),
            Err((error, _)) => Err(error.clone()),
        };
        if ticket & SIDE == 0 {
            // The receiver is gone only once its loop stopped: nobody waits.
            let _ = self.answers.send((ticket, answer));
        } else if let Some(waiter) = self.side.lock().expect("side tickets").remove(&ticket) {
            let _ = waiter.send(answer);
        }
    }
}

/// One record waiting for its answer.
struct Slot<T> {
    /// What the caller keeps about the record until it is confirmed.
    record: T,
    /// Kafka's answer, once it came.
    answer: Option<Answer>,
}

/// The records sent and not yet handed back, in send order, each with
/// what its caller keeps about it (`T`) until Kafka answered it and every
/// record before it.
pub struct InFlight<T> {
    /// Slot `i` holds ticket `first + i`.
    slots: VecDeque<Slot<T>>,
    /// The front slot's ticket.
    first: Ticket,
    /// Answers as librdkafka gives them.
    answers: mpsc::UnboundedReceiver<(Ticket, Answer)>,
}

impl<T> InFlight<T> {
    /// An empty queue reading `answers`.
    pub fn new(answers: Answers) -> InFlight<T> {
        InFlight { slots: VecDeque::new(), first: 0, answers: answers.0 }
    }

    /// The ticket the next [`push`](Self::push) files its record under:
    /// what the record is sent with.
    pub fn next_ticket(&self) -> Ticket {
        self.first + self.slots.len()
    }

    /// Files the record just sent under [`Self::next_ticket`]; `answer` is
    /// given when it is already known (refused before sending, or nothing
    /// to send).
    pub fn push(&mut self, record: T, answer: Option<Answer>) {
        self.slots.push_back(Slot { record, answer });
    }

    /// How many records wait.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether none waits.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The front record and its answer if it has one by now; never waits.
    pub fn ready(&mut self) -> Option<(T, Answer)> {
        while let Ok((ticket, answer)) = self.answers.try_recv() {
            self.file(ticket, answer);
        }
        self.pop_answered()
    }

    /// The front record and its answer, waiting for it; `None` when no
    /// record waits (or librdkafka is gone, which answers nothing more).
    pub async fn next(&mut self) -> Option<(T, Answer)> {
        loop {
            if let Some(ready) = self.ready() {
                return Some(ready);
            }
            if self.slots.is_empty() {
                return None;
            }
            let (ticket, answer) = self.answers.recv().await?;
            self.file(ticket, answer);
        }
    }

    /// Puts an answer in its slot; one for no waiting record is dropped.
    fn file(&mut self, ticket: Ticket, answer: Answer) {
        if let Some(slot) = ticket.checked_sub(self.first).and_then(|index| self.slots.get_mut(index)) {
            slot.answer = Some(answer);
        }
    }

    /// The front record, if answered.
    fn pop_answered(&mut self) -> Option<(T, Answer)> {
        self.slots.front()?.answer.as_ref()?;
        let slot = self.slots.pop_front()?;
        self.first += 1;
        Some((slot.record, slot.answer?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queue() -> (mpsc::UnboundedSender<(Ticket, Answer)>, InFlight<&'static str>) {
        let (sender, receiver) = mpsc::unbounded_channel();
        (sender, InFlight::new(Answers(receiver)))
    }

    fn send(queue: &mut InFlight<&'static str>, record: &'static str) -> Ticket {
        let ticket = queue.next_ticket();
        queue.push(record, None);
        ticket
    }

    #[test]
    fn records_come_back_in_send_order_whatever_order_kafka_answers_in() {
        let (answers, mut queue) = queue();
        let (a, b, c) = (send(&mut queue, "a"), send(&mut queue, "b"), send(&mut queue, "c"));
        answers.send((c, Ok(()))).unwrap();
        answers.send((b, Err(KafkaError::Canceled))).unwrap();
        assert!(queue.ready().is_none(), "the front has no answer yet");
        assert_eq!(queue.len(), 3);
        answers.send((a, Ok(()))).unwrap();
        assert!(matches!(queue.ready(), Some(("a", Ok(())))));
        assert!(matches!(queue.ready(), Some(("b", Err(KafkaError::Canceled)))));
        assert!(matches!(queue.ready(), Some(("c", Ok(())))));
        assert!(queue.ready().is_none() && queue.is_empty());
        assert_eq!(queue.next_ticket(), 3, "tickets keep counting");
    }

    #[test]
    fn a_known_answer_needs_no_report_and_strays_are_dropped() {
        let (answers, mut queue) = queue();
        queue.push("header", Some(Ok(())));
        let sent = send(&mut queue, "order");
        answers.send((sent + 7, Ok(()))).unwrap();
        assert!(matches!(queue.ready(), Some(("header", Ok(())))));
        assert!(queue.ready().is_none(), "an answer for another ticket is not this one's");
        answers.send((sent, Ok(()))).unwrap();
        assert!(matches!(queue.ready(), Some(("order", Ok(())))));
    }

    #[tokio::test]
    async fn next_waits_for_the_front_and_ends_when_nothing_waits() {
        let (answers, mut queue) = queue();
        assert!(queue.next().await.is_none());
        let (first, second) = (send(&mut queue, "first"), send(&mut queue, "second"));
        let late = tokio::spawn(async move {
            answers.send((second, Ok(()))).unwrap();
            tokio::task::yield_now().await;
            answers.send((first, Ok(()))).unwrap();
        });
        assert!(matches!(queue.next().await, Some(("first", Ok(())))));
        assert!(matches!(queue.next().await, Some(("second", Ok(())))));
        late.await.unwrap();
        assert!(queue.next().await.is_none());
    }

    #[test]
    fn side_tickets_are_apart_from_send_order() {
        let (reports, _answers) = DeliveryReports::new();
        let (one, mut waiter) = reports.side_ticket();
        let (two, _) = reports.side_ticket();
        assert!(one & SIDE != 0 && two & SIDE != 0 && one != two);
        reports.cancel_side_ticket(two);
        assert!(waiter.try_recv().is_err(), "no answer before the report");
    }
}
