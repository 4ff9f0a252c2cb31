//! The binary's own code pages, returned once the compiler has run.
//!
//! A cold start (empty compiled-module cache) runs cranelift, which is several MiB of the
//! `wasp` binary's machine code. Those pages are mapped from the executable and stay counted
//! in the process's RSS after the compiler is done, though the proxy never runs them again:
//! measured, the binary's code was 18.1 MiB resident after a cold start and 13.3 MiB after a
//! warm one, all of the difference between the two (`BENCHMARKS.md`).
//!
//! [`return_code_pages`] drops the resident pages of the executable's code segments from the
//! process (`MADV_DONTNEED`). Code is never written, so the pages stay in the page cache, and
//! those the proxy still runs come back on first use by a minor fault: what stays resident is
//! the code the proxy runs, whatever was compiled at start-up.

/// Drops the resident pages of the executable's code from this process (see the module's
/// documentation) and returns how many bytes of mappings were advised. Only read-and-execute
/// mappings of the executable's own file are touched: they hold the file's bytes unchanged,
/// while other read-only mappings may hold relocated data that the file does not.
#[cfg(target_os = "linux")]
pub fn return_code_pages() -> std::io::Result<usize> {
    use std::os::unix::fs::MetadataExt;

    let inode = std::fs::metadata("/proc/self/exe")?.ino();
    let maps = std::fs::read_to_string("/proc/self/maps")?;
    let mut advised = 0;
    for (start, end) in maps.lines().filter_map(|line| code_mapping(line, inode)) {
        #[allow(unsafe_code)]
        // SAFETY: the range is a private, read-and-execute mapping of the executable as the
        // kernel lists it; such pages are never written, so dropping them loses nothing: the
        // next access maps the same bytes from the file again.
        let done =
            unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED) };
        if done != 0 {
            return Err(std::io::Error::last_os_error());
        }
        advised += end - start;
    }
    Ok(advised)
}

/// Nothing to do where the code's pages cannot be listed.
#[cfg(not(target_os = "linux"))]
pub fn return_code_pages() -> std::io::Result<usize> {
    Ok(0)
}

/// The address range of a line of `/proc/self/maps` if it maps code of the file `inode`:
/// `start-end perms offset dev inode path`.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
fn code_mapping(line: &str, inode: u64) -> Option<(usize, usize)> {
    let mut fields = line.split_ascii_whitespace();
    let (range, perms) = (fields.next()?, fields.next()?);
    let line_inode: u64 = fields.nth(2)?.parse().ok()?;
    if perms != "r-xp" || line_inode != inode {
        return None;
    }
    let (start, end) = range.split_once('-')?;
    let start = usize::from_str_radix(start, 16).ok()?;
    let end = usize::from_str_radix(end, 16).ok()?;
    (start < end).then_some((start, end))
}

#[cfg(test)]
mod tests {
    use super::code_mapping;

    #[test]
    fn only_code_of_the_file_is_chosen() {
        let code = "55d0c0a00000-55d0c1e00000 r-xp 00a00000 fd:01 4242 /usr/bin/wasp";
        assert_eq!(
            code_mapping(code, 4242),
            Some((0x55d0c0a00000, 0x55d0c1e00000))
        );
        assert_eq!(code_mapping(code, 7), None, "another file");
        let relocated = "55d0c1e00000-55d0c2200000 r--p 01e00000 fd:01 4242 /usr/bin/wasp";
        assert_eq!(
            code_mapping(relocated, 4242),
            None,
            "read-only data may be relocated"
        );
        let anon = "7f0000000000-7f0000021000 rw-p 00000000 00:00 0";
        assert_eq!(code_mapping(anon, 0), None);
        assert_eq!(code_mapping("garbage", 0), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn every_code_mapping_is_returned_and_the_code_still_runs() {
        use std::os::unix::fs::MetadataExt;
        let inode = std::fs::metadata("/proc/self/exe").unwrap().ino();
        let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
        let code: usize = maps
            .lines()
            .filter_map(|line| code_mapping(line, inode))
            .map(|(start, end)| end - start)
            .sum();
        assert!(code > 0, "the test binary runs code of its own file");
        assert_eq!(super::return_code_pages().unwrap(), code);
        // The pages come back from the file as the code runs (how much of the resident set
        // this returns in the proxy is measured by `bench/run --only memory`: here the
        // kernel's fault-around maps most of a small test binary back at once).
        assert_eq!(super::return_code_pages().unwrap(), code);
    }
}
