//! Whether the process runs under valgrind (`RUNNING_ON_VALGRIND` of
//! valgrind.h, a client request: natively a few instructions that change
//! nothing).
//!
//! Valgrind runs one thread at a time: a thread that spins waiting for
//! another keeps it from running until valgrind switches threads (at a
//! blocking system call or after some 100,000 blocks). A waiting caller
//! (see `handoff`) therefore yields there instead of spinning, as CPython
//! uses `malloc` instead of its own allocator under valgrind.

use std::sync::OnceLock;

/// True under valgrind (asked once).
pub fn running_on_valgrind() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| client_request_running() != 0)
}

#[cfg(target_arch = "x86_64")]
fn client_request_running() -> usize {
    // VG_USERREQ__RUNNING_ON_VALGRIND, then five unused arguments.
    let args: [usize; 6] = [0x1001, 0, 0, 0, 0, 0];
    let mut result: usize = 0;
    // SAFETY: valgrind.h's client request for amd64. Natively the four
    // rotations of rdi add up to 128 bits (rdi ends as it began) and
    // `xchg rbx, rbx` does nothing, so rdx keeps the default (0); under
    // valgrind the sequence is recognised, and valgrind reads the
    // argument block that rax points to (six words, alive across the
    // asm) and writes its answer to rdx. Only rdi (declared), rdx and the
    // flags change.
    unsafe {
        std::arch::asm!(
            "rol rdi, 3",
            "rol rdi, 13",
            "rol rdi, 61",
            "rol rdi, 51",
            "xchg rbx, rbx",
            inout("rdx") result,
            in("rax") args.as_ptr(),
            inout("rdi") 0usize => _,
        );
    }
    result
}

#[cfg(not(target_arch = "x86_64"))]
fn client_request_running() -> usize {
    0
}

#[cfg(test)]
mod tests {
    #[test]
    fn natively_not_on_valgrind() {
        // `cargo test` does not run under valgrind: the request must answer
        // 0 and leave the process running.
        assert!(!super::running_on_valgrind());
    }
}
