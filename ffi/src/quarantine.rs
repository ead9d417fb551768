//! Freed handle addresses are held back from the allocator for a while.
//!
//! The live-handle table knows handles by address. If a freed block went straight back to
//! the allocator, the next handle of the same size would usually get the same address
//! (allocators hand out the most recently freed block first), and a stale pointer kept by
//! C would then pass for the new handle: a use after free or a double free that frees
//! somebody else's object. So a free drops the handle's contents at once (module bytes,
//! strings, a client's connections) but keeps the block itself out of circulation until
//! [`BUDGET_BYTES`] of later frees have pushed it out, oldest first. A stale handle is
//! detected as long as its block is held here: for the library's handle sizes, through
//! the next several thousand frees.

use std::collections::VecDeque;
use std::sync::Mutex;

/// How many bytes of freed blocks are held at most. Handles are a few hundred bytes and
/// returned strings are short, so this covers the last several thousand frees.
pub(crate) const BUDGET_BYTES: usize = 2 * 1024 * 1024;

/// A freed block: memory only (a `MaybeUninit` or plain bytes), whose drop gives the
/// memory back to the allocator and runs no destructor of the old value.
type Block = Box<dyn Send>;

struct Quarantine {
    blocks: VecDeque<(Block, usize)>,
    bytes: usize,
}

static QUARANTINE: Mutex<Quarantine> = Mutex::new(Quarantine {
    blocks: VecDeque::new(),
    bytes: 0,
});

/// Holds `block` (of `bytes` bytes), and gives the oldest blocks beyond the budget back.
pub(crate) fn hold(block: Block, bytes: usize) {
    if bytes == 0 {
        // Zero-sized values own no memory: there is no address to keep from reuse.
        return;
    }
    let released: Vec<(Block, usize)> = {
        let mut q = QUARANTINE.lock().unwrap_or_else(|p| p.into_inner());
        q.bytes += bytes;
        q.blocks.push_back((block, bytes));
        let mut released = Vec::new();
        while q.bytes > BUDGET_BYTES {
            let Some(oldest) = q.blocks.pop_front() else {
                break;
            };
            q.bytes -= oldest.1;
            released.push(oldest);
        }
        released
    };
    // Given back outside the lock.
    drop(released);
}

/// How many bytes are held now.
#[cfg(test)]
pub(crate) fn held_bytes() -> usize {
    QUARANTINE.lock().unwrap_or_else(|p| p.into_inner()).bytes
}
