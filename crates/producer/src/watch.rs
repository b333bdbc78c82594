//! Filesystem notifications for the inbox, so new files and appended lines
//! are seen at once instead of at the next poll.
//!
//! Notifications only wake the loop; what changed is always found by looking
//! (listing the folder, comparing sizes), so a lost or coalesced event costs
//! at most one rescan interval, never data.

use std::path::Path;
use std::sync::Arc;

use notify::event::ModifyKind;
use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::Notify;
use tracing::warn;

/// Keeps the watch alive; dropping it stops the notifications.
pub struct InboxWatcher {
    _watcher: RecommendedWatcher,
}

impl InboxWatcher {
    /// Watches `inbox` and wakes `wake` when something in it changes. `None`,
    /// with a warning, where the filesystem offers no notifications: the
    /// caller then polls.
    pub fn start(inbox: &Path, wake: Arc<Notify>) -> Option<InboxWatcher> {
        let on_event = move |event: notify::Result<notify::Event>| {
            if event.map_or(true, |event| is_change(&event.kind)) {
                wake.notify_one();
            }
        };
        let watched = notify::recommended_watcher(on_event)
            .and_then(|mut watcher| watcher.watch(inbox, RecursiveMode::NonRecursive).map(|()| watcher));
        match watched {
            Ok(watcher) => Some(InboxWatcher { _watcher: watcher }),
            Err(error) => {
                warn!(message = "No filesystem notifications for the inbox; polling instead.",
                      inbox = %inbox.display(), %error);
                None
            }
        }
    }
}

/// Whether an event can mean new bytes or files. Opening, reading and closing
/// (access events) cannot: the producer's own rescans and reads cause those,
/// and waking on them kept the producer busy in a loop of its own making. Nor
/// can metadata changes (access times, permissions).
pub fn is_change(kind: &EventKind) -> bool {
    !matches!(kind, EventKind::Access(_) | EventKind::Modify(ModifyKind::Metadata(_)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use notify::event::{AccessKind, CreateKind, DataChange, MetadataKind, RenameMode};

    #[test]
    fn new_files_appends_renames_and_deletes_wake_the_producer() {
        assert!(is_change(&EventKind::Create(CreateKind::File)));
        assert!(is_change(&EventKind::Modify(ModifyKind::Data(DataChange::Any))));
        assert!(is_change(&EventKind::Modify(ModifyKind::Name(RenameMode::Both))));
        assert!(is_change(&EventKind::Remove(notify::event::RemoveKind::File)));
        assert!(is_change(&EventKind::Any));
    }

    #[test]
    fn the_producers_own_reads_do_not_wake_it() {
        assert!(!is_change(&EventKind::Access(AccessKind::Any)));
        assert!(!is_change(&EventKind::Modify(ModifyKind::Metadata(MetadataKind::AccessTime))));
    }
}
