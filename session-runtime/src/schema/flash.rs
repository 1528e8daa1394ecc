//! Flash messages: typed values queued in one request and read once in a later one, kept in
//! the session's [`Internal`] fields so every store persists them like any field.
//!
//! The queue is one internal field holding a MessagePack array of binary entries, each the
//! MessagePack encoding of one message. Reading takes the whole queue and unsets the field;
//! reading an empty queue, like not touching it, changes nothing (so nothing is written).

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::internal::{keys, Internal};
use crate::error::EncodeError;

/// At most this many messages are kept; pushing more drops the oldest (a handler flashing
/// in a loop cannot grow a session without bound).
pub(crate) const MAX_MESSAGES: usize = 32;

/// The encoded messages of the queue, oldest first (empty when there is none or it does not
/// decode).
fn entries(internal: &Internal) -> Vec<&[u8]> {
    let Some(mut bytes) = internal.get(keys::FLASH) else {
        return Vec::new();
    };
    let Ok(count) = rmp::decode::read_array_len(&mut bytes) else {
        tracing::warn!("a session's flash queue does not decode; it is dropped");
        return Vec::new();
    };
    let mut out = Vec::with_capacity((count as usize).min(MAX_MESSAGES));
    for _ in 0..count {
        let Ok(len) = rmp::decode::read_bin_len(&mut bytes) else {
            break;
        };
        let Some((entry, rest)) = bytes.split_at_checked(len as usize) else {
            break;
        };
        out.push(entry);
        bytes = rest;
    }
    out
}

fn encode_queue(entries: &[&[u8]]) -> Result<Vec<u8>, EncodeError> {
    let too_large = |_| EncodeError::TooLarge {
        what: "flash queue",
    };
    let mut out = Vec::new();
    let count = u32::try_from(entries.len()).map_err(too_large)?;
    let _ = rmp::encode::write_array_len(&mut out, count);
    for entry in entries {
        let _ = u32::try_from(entry.len()).map_err(too_large)?;
        let _ = rmp::encode::write_bin(&mut out, entry);
    }
    Ok(out)
}

/// Queues `message` for a later request.
///
/// # Errors
/// If the message's `Serialize` implementation fails; the queue is left as it was.
pub(crate) fn push<M: Serialize>(internal: &mut Internal, message: &M) -> Result<(), EncodeError> {
    let mut encoded = Vec::new();
    let mut serializer = rmp_serde::Serializer::new(&mut encoded).with_struct_map();
    message
        .serialize(&mut serializer)
        .map_err(|source| EncodeError::Flash {
            type_name: core::any::type_name::<M>(),
            source,
        })?;
    let mut queue = entries(internal);
    if queue.len() >= MAX_MESSAGES {
        let excess = queue.len() + 1 - MAX_MESSAGES;
        tracing::warn!(
            dropped = excess,
            "a session's flash queue is full; its oldest messages are dropped"
        );
        queue.drain(..excess);
    }
    queue.push(&encoded);
    let value = encode_queue(&queue)?;
    internal.set(keys::FLASH, Some(value));
    Ok(())
}

/// Takes every queued message, oldest first, and empties the queue. Messages that do not
/// decode as `M` are dropped with a warning.
pub(crate) fn take<M: DeserializeOwned>(internal: &mut Internal) -> Vec<M> {
    let messages = entries(internal)
        .into_iter()
        .filter_map(|entry| match rmp_serde::from_slice(entry) {
            Ok(message) => Some(message),
            Err(error) => {
                tracing::warn!(
                    %error,
                    r#type = core::any::type_name::<M>(),
                    "a flash message does not decode as the type asked for; it is dropped"
                );
                None
            }
        })
        .collect();
    internal.set(keys::FLASH, None);
    messages
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_come_back_once_in_order() {
        let mut internal = Internal::new();
        push(&mut internal, &"saved").unwrap();
        push(&mut internal, &"and again").unwrap();
        assert_eq!(entries(&internal).len(), 2);
        internal.reset_changes();
        let taken: Vec<String> = take(&mut internal);
        assert_eq!(taken, ["saved", "and again"]);
        assert!(internal.is_changed(), "reading removes the queue");
        internal.reset_changes();
        assert!(take::<String>(&mut internal).is_empty());
        assert!(!internal.is_changed(), "reading nothing changes nothing");
    }

    #[test]
    fn the_queue_is_bounded() {
        let mut internal = Internal::new();
        for index in 0..MAX_MESSAGES + 5 {
            push(&mut internal, &index).unwrap();
        }
        let taken: Vec<usize> = take(&mut internal);
        assert_eq!(taken.len(), MAX_MESSAGES);
        assert_eq!(taken[0], 5, "the oldest are dropped");
    }

    #[test]
    fn messages_of_another_type_are_dropped_not_fatal() {
        let mut internal = Internal::new();
        push(&mut internal, &"text").unwrap();
        push(&mut internal, &7u32).unwrap();
        let taken: Vec<u32> = take(&mut internal);
        assert_eq!(taken, [7]);
    }

    #[test]
    fn a_garbage_queue_reads_as_empty() {
        let mut internal = Internal::new();
        internal.set(keys::FLASH, Some(vec![0x92, 0xc4, 200]));
        assert!(take::<String>(&mut internal).is_empty());
    }
}
