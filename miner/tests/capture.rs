//! Differential test of the capture reader against tshark (Wireshark 4.0, default preferences):
//! every packet, every column but `_ws.col.protocol` (which deliberately differs, see the
//! reader's module documentation), compared cell by cell.
//!
//! The captures: the shared nDPI and CAIDA samples, `/tmp/netflix.pcap` when it exists, the
//! nDPI sample rewritten as pcap, nanosecond pcap, raw IP, Linux cooked v1 and v2, and a
//! synthetic capture of edge cases (window scaling, port reuse, ICMP errors, fragments,
//! truncated and bogus headers, tunnels) in several file formats.  tshark and editcap must be
//! installed (Debian/Ubuntu: `apt-get install tshark`); without them the test fails.
//!
//! Also, without tshark: the nDPI sample damaged (corrupt lengths, cut short, unsupported link
//! types), read leniently (the packets before the damage, and a warning saying where and what)
//! and strictly (an error naming the frame).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use miner::input::pcap::{COLUMNS, read_capture, read_capture_with};
use miner::input::{Cell, InputError, Origin, RawTable};

/// The column of ours that tshark does not have (see the reader's documentation).
const NOT_COMPARED: &str = "_ws.col.protocol";
const MAX_REPORTED: usize = 20;

fn shared(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/data")
        .join(relative)
}

/// Runs a Wireshark tool, failing the test clearly when it is not installed.
fn tool(name: &str, args: &[&str], config: &Path) -> Vec<u8> {
    let output = Command::new(name)
        .args(args)
        .env("WIRESHARK_CONFIG_DIR", config)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "`{name}` is needed by this test (Wireshark 4.0; Debian/Ubuntu package tshark): {e}"
            )
        });
    assert!(
        output.status.success(),
        "{name} {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

/// tshark's fields for every packet of a capture, in the order of [`COLUMNS`] without the
/// column not compared.
fn tshark_rows(capture: &Path) -> Vec<Vec<String>> {
    // An empty configuration directory: tshark's default preferences.
    let config = tempfile::tempdir().expect("temporary directory");
    let mut args = vec![
        "-n",
        "-r",
        capture.to_str().expect("UTF-8 path"),
        "-T",
        "fields",
    ];
    args.extend(["-E", "separator=/t", "-E", "occurrence=f", "-E", "header=n"]);
    for column in COLUMNS.iter().filter(|c| **c != NOT_COMPARED) {
        args.extend(["-e", column]);
    }
    let stdout = tool("tshark", &args, config.path());
    let text = String::from_utf8(stdout).expect("tshark prints UTF-8");
    text.lines()
        .map(|line| line.split('\t').map(str::to_owned).collect())
        .collect()
}

/// tshark's text for a field as the cell the reader should produce.
fn expected(column: &str, text: &str) -> Cell {
    if text.is_empty() {
        return Cell::Missing;
    }
    const ADDRESSES: [&str; 6] = [
        "eth.src", "eth.dst", "ip.src", "ip.dst", "ipv6.src", "ipv6.dst",
    ];
    if ADDRESSES.contains(&column) {
        return Cell::Text(text.to_owned());
    }
    if column == "frame.time_epoch" {
        return text
            .parse()
            .map_or_else(|_| Cell::Text(text.to_owned()), Cell::Real);
    }
    let number = match text {
        "True" => Some(1),
        "False" => Some(0),
        _ => match text.strip_prefix("0x") {
            Some(hex) => i64::from_str_radix(hex, 16).ok(),
            None => text.parse().ok(),
        },
    };
    number.map_or_else(|| Cell::Text(text.to_owned()), Cell::Int)
}

/// What a comparison covered.
#[derive(Debug, Default)]
struct Outcome {
    packets: usize,
    cells: usize,
    present: usize,
    mismatches: Vec<String>,
}

/// Compares the reader with tshark on one capture; panics with the first mismatches.
fn assert_matches_tshark(capture: &Path) -> Outcome {
    let table =
        read_capture(capture).unwrap_or_else(|e| panic!("reading {}: {e}", capture.display()));
    assert!(
        table.report.warnings.is_empty(),
        "{:?}",
        table.report.warnings
    );
    let theirs = tshark_rows(capture);
    assert_eq!(
        table.rows.len(),
        theirs.len(),
        "{}: packet count",
        capture.display()
    );
    assert_eq!(table.report.records as usize, table.rows.len());
    let mut outcome = Outcome {
        packets: theirs.len(),
        ..Outcome::default()
    };
    for (i, (ours, their)) in table.rows.iter().zip(&theirs).enumerate() {
        assert_eq!(table.origins[i].number(), i as u64 + 1);
        compare_row(i + 1, ours, their, &mut outcome);
    }
    println!(
        "{}: {} packets, {} cells compared ({} present in tshark's output), {} mismatches",
        capture.display(),
        outcome.packets,
        outcome.cells,
        outcome.present,
        outcome.mismatches.len()
    );
    if !outcome.mismatches.is_empty() {
        let mut message = format!(
            "{}: {} mismatches",
            capture.display(),
            outcome.mismatches.len()
        );
        for line in outcome.mismatches.iter().take(MAX_REPORTED) {
            let _ = write!(message, "\n  {line}");
        }
        panic!("{message}");
    }
    outcome
}

fn compare_row(frame: usize, ours: &[Cell], theirs: &[String], outcome: &mut Outcome) {
    let compared = COLUMNS
        .iter()
        .enumerate()
        .filter(|(_, c)| **c != NOT_COMPARED);
    assert_eq!(
        theirs.len(),
        COLUMNS.len() - 1,
        "frame {frame}: tshark's field count"
    );
    for ((index, column), text) in compared.zip(theirs) {
        let want = expected(column, text);
        outcome.cells += 1;
        outcome.present += usize::from(!want.is_missing());
        if ours[index] != want {
            outcome.mismatches.push(format!(
                "frame {frame}, {column}: tshark `{text}`, ours {}",
                ours[index]
            ));
        }
    }
}

#[test]
fn ndpi_alexa_capture_matches_tshark() {
    let outcome = assert_matches_tshark(&shared("pcap-ndpi-apps/alexa-app.pcapng"));
    assert_eq!(outcome.packets, 3103);
}

#[test]
fn caida_header_only_capture_matches_tshark() {
    let outcome = assert_matches_tshark(&shared("pcap-caida-nyc2018/caida_small_10k.pcapng"));
    assert_eq!(outcome.packets, 10_000);
}

#[test]
fn ndpi_netflix_capture_matches_tshark() {
    let path = Path::new("/tmp/netflix.pcap");
    if !path.exists() {
        println!(
            "skipped: {} is absent (extract it with `git --git-dir=<nDPI mirror> show \
             HEAD:tests/cfgs/default/pcap/netflix.pcap > /tmp/netflix.pcap`)",
            path.display()
        );
        return;
    }
    let outcome = assert_matches_tshark(path);
    assert_eq!(outcome.packets, 1793);
}

/// The nDPI sample rewritten by editcap as pcap, nanosecond pcap and raw IP (Ethernet header
/// cut off), and by this test as Linux cooked captures v1 and v2.
#[test]
fn rewritten_captures_match_tshark() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let config = tempfile::tempdir().expect("temporary directory");
    let source = shared("pcap-ndpi-apps/alexa-app.pcapng");
    let source = source.to_str().expect("UTF-8 path");
    let out = |name: &str| {
        dir.path()
            .join(name)
            .to_str()
            .expect("UTF-8 path")
            .to_owned()
    };
    let (pcap, nsec, raw) = (
        out("alexa.pcap"),
        out("alexa-ns.pcap"),
        out("alexa-raw.pcap"),
    );
    tool("editcap", &["-F", "pcap", source, &pcap], config.path());
    tool("editcap", &["-F", "nsecpcap", source, &nsec], config.path());
    tool(
        "editcap",
        &["-F", "pcap", "-C", "14", "-T", "rawip", source, &raw],
        config.path(),
    );
    for path in [&pcap, &nsec, &raw] {
        assert_eq!(assert_matches_tshark(Path::new(path)).packets, 3103);
    }
    let frames = legacy_packets(&std::fs::read(&pcap).expect("editcap's output"));
    for (linktype, name) in [(113, "alexa-sll.pcap"), (276, "alexa-sll2.pcap")] {
        let packets: Vec<Packet> = frames.iter().map(|p| relink(p, linktype)).collect();
        let path = dir.path().join(name);
        write_pcap(&path, linktype, &packets, Layout::Micro);
        assert_eq!(assert_matches_tshark(&path).packets, 3103);
    }
}

/// Edge cases written by this test, in pcap (little-endian microseconds, big-endian
/// nanoseconds; Ethernet, raw IP, Linux cooked v1 and v2) and in pcapng (two sections;
/// interfaces of three link types and three timestamp resolutions).
#[test]
fn synthetic_edge_cases_match_tshark() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let packets = edge_cases();
    let pcap = dir.path().join("edges.pcap");
    write_pcap(&pcap, 1, &packets, Layout::Micro);
    assert_eq!(assert_matches_tshark(&pcap).packets, packets.len());
    let big = dir.path().join("edges-be-ns.pcap");
    write_pcap(&big, 1, &packets, Layout::BigNano);
    assert_matches_tshark(&big);
    for linktype in [101, 113, 276] {
        let path = dir.path().join(format!("edges-{linktype}.pcap"));
        let relinked: Vec<Packet> = packets.iter().map(|p| relink(p, linktype)).collect();
        write_pcap(&path, linktype, &relinked, Layout::Micro);
        assert_matches_tshark(&path);
    }
    let ng = dir.path().join("edges.pcapng");
    write_pcapng(&ng, &packets);
    assert_eq!(assert_matches_tshark(&ng).packets, packets.len());
}

// ---- Damaged captures ----

/// The nDPI sample: its bytes, its packets, the byte offsets of its blocks.
fn alexa() -> (Vec<u8>, Vec<Packet>, Vec<usize>) {
    let bytes = std::fs::read(shared("pcap-ndpi-apps/alexa-app.pcapng")).expect("the sample");
    let word = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
    let (mut packets, mut blocks, mut at) = (Vec::new(), Vec::new(), 0);
    while at < bytes.len() {
        blocks.push(at);
        if word(at) == 6 {
            let captured = word(at + 20) as usize;
            packets.push((
                bytes[at + 28..at + 28 + captured].to_vec(),
                word(at + 24) as usize,
            ));
        }
        at += word(at + 4) as usize;
    }
    assert_eq!(packets.len(), 3103);
    (bytes, packets, blocks)
}

/// The byte offsets of the records of a pcap file written by [`write_pcap`].
fn record_offsets(packets: &[Packet]) -> Vec<usize> {
    let mut at = 24;
    packets
        .iter()
        .map(|(data, _)| {
            let start = at;
            at += 16 + data.len();
            start
        })
        .collect()
}

/// `bytes` with the word at `at` set to `value`, in the byte order given.
fn patch(bytes: &[u8], at: usize, value: u32, big_endian: bool) -> Vec<u8> {
    let mut damaged = bytes.to_vec();
    let value = if big_endian {
        value.to_be_bytes()
    } else {
        value.to_le_bytes()
    };
    damaged[at..at + 4].copy_from_slice(&value);
    damaged
}

/// Reads `bytes` as a file, leniently (damage must not be an error) and strictly.
fn read_both(dir: &Path, bytes: &[u8]) -> (RawTable, Result<RawTable, InputError>) {
    let path = dir.join("damaged.cap");
    std::fs::write(&path, bytes).expect("writing a capture");
    let lenient = read_capture(&path).unwrap_or_else(|e| panic!("damage is not an error: {e}"));
    (lenient, read_capture_with(&path, true))
}

/// The origin and message of a strict reading's error.
fn record_error(result: Result<RawTable, InputError>) -> (Origin, String) {
    match result {
        Err(InputError::Record {
            origin, message, ..
        }) => (origin, message),
        other => panic!("not a record error: {other:?}"),
    }
}

#[test]
fn damaged_ndpi_pcap_says_which_frame_and_what() {
    let (_, packets, _) = alexa();
    let dir = tempfile::tempdir().expect("temporary directory");
    let offsets = record_offsets(&packets);
    for layout in [Layout::Micro, Layout::BigNano] {
        let big_endian = layout == Layout::BigNano;
        let path = dir.path().join("alexa.pcap");
        write_pcap(&path, 1, &packets, layout);
        let bytes = std::fs::read(&path).expect("the capture");
        let whole = read_capture(&path).expect("a capture");
        assert_eq!(whole.rows.len(), 3103);
        assert!(whole.report.warnings.is_empty());
        // Frame 11 claims 2 GiB: a corrupt length, not the end of the file.
        let at = offsets[10];
        let rest = bytes.len() - at;
        let (table, strict) =
            read_both(dir.path(), &patch(&bytes, at + 8, 0x7fff_ffff, big_endian));
        assert_eq!(table.rows, whole.rows[..10]);
        assert_eq!(
            table.report.warnings,
            [format!(
                "frame 11 at byte offset {at} claims a captured length of 2147483647 bytes, more \
                 than the snapshot length (262144 bytes) and the {} bytes left in the file: the \
                 capture is damaged there; the remaining {rest} bytes are not read; kept the 10 \
                 packets before it",
                rest - 16
            )]
        );
        let (origin, message) = record_error(strict);
        assert_eq!(origin, Origin::Frame(11));
        assert!(
            message.starts_with(&format!(
                "the packet record at byte offset {at} claims a captured length of 2147483647"
            )),
            "{message}"
        );
        // The first frame: nothing is read, and the warning still says where.
        let (table, strict) = read_both(dir.path(), &patch(&bytes, 24 + 8, 1 << 20, big_endian));
        assert!(table.rows.is_empty());
        let warnings = &table.report.warnings;
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0].starts_with(
                "frame 1 at byte offset 24 claims a captured length of 1048576 bytes, more than \
                 the snapshot length (262144 bytes): the capture is damaged there"
            ),
            "{warnings:?}"
        );
        assert_eq!(record_error(strict).0, Origin::Frame(1));
        // Really cut short, in frame 3000.
        let at = offsets[2999];
        let (table, strict) = read_both(dir.path(), &bytes[..at + 30]);
        assert_eq!(table.rows, whole.rows[..2999]);
        assert_eq!(
            table.report.warnings,
            [format!(
                "the file ends in the middle of frame 3000 at byte offset {at}, which claims a \
                 captured length of {} bytes: only 14 bytes are left (the file is cut short); kept \
                 the 2999 packets before it",
                packets[2999].0.len()
            )]
        );
        assert_eq!(record_error(strict).0, Origin::Frame(3000));
    }
    // Unsupported link types are named, and counted.
    for (linktype, name) in [(105, "IEEE 802.11"), (0, "BSD loopback")] {
        let path = dir.path().join("alexa-relinked.pcap");
        write_pcap(&path, linktype, &packets, Layout::Micro);
        let table = read_capture(&path).expect("a capture");
        assert_eq!(table.rows.len(), 3103);
        assert_eq!(
            table.report.warnings,
            [format!(
                "link type {linktype} ({name}) is not supported: 3103 packets have only the \
                 frame.* fields (the first is frame 1)"
            )]
        );
        let (origin, message) = record_error(read_capture_with(&path, true));
        assert_eq!(origin, Origin::Frame(1));
        assert!(
            message.starts_with(&format!("link type {linktype} ({name}) is not supported")),
            "{message}"
        );
    }
}

#[test]
fn damaged_ndpi_pcapng_says_which_block_and_what() {
    let (bytes, _, blocks) = alexa();
    let whole = read_capture(&shared("pcap-ndpi-apps/alexa-app.pcapng")).expect("a capture");
    let dir = tempfile::tempdir().expect("temporary directory");
    let damaged = |rest: usize| {
        format!("the capture is damaged there; the remaining {rest} bytes are not read")
    };
    // Block 2000 (frame 1998) claims a captured length larger than the block.
    let at = blocks[1999];
    let (len, rest) = (blocks[2000] - at, bytes.len() - at);
    let (table, strict) = read_both(dir.path(), &patch(&bytes, at + 20, 0x7fff_ffff, false));
    assert_eq!(table.rows, whole.rows[..1997]);
    assert_eq!(
        table.report.warnings,
        [format!(
            "block 2000 (frame 1998) at byte offset {at} claims a captured length of 2147483647 \
             bytes, more than its block of {len} bytes holds ({} bytes): {}; kept the 1997 \
             packets before it",
            len - 32,
            damaged(rest)
        )]
    );
    let (origin, message) = record_error(strict);
    assert_eq!(origin, Origin::Frame(1998));
    assert!(
        message.starts_with(&format!("block 2000 at byte offset {at} claims")),
        "{message}"
    );
    // Block 10 (frame 8) claims a block length beyond the end of the file, which holds more
    // blocks; or beyond the pcapng maximum.
    let at = blocks[9];
    let rest = bytes.len() - at;
    let (table, _) = read_both(dir.path(), &patch(&bytes, at + 4, 1 << 26, false));
    assert_eq!(table.rows, whole.rows[..7]);
    assert_eq!(
        table.report.warnings,
        [format!(
            "block 10 (frame 8) at byte offset {at} claims a block length of 67108864 bytes, more \
             than the {rest} bytes left in the file, yet a plausible block follows at byte offset \
             {}: {}; kept the 7 packets before it",
            blocks[10],
            damaged(rest)
        )]
    );
    let (table, _) = read_both(dir.path(), &patch(&bytes, at + 4, 0x7fff_fff0, false));
    assert_eq!(table.rows, whole.rows[..7]);
    assert_eq!(
        table.report.warnings,
        [format!(
            "block 10 (frame 8) at byte offset {at} claims a block length of 2147483632 bytes, \
             more than the pcapng maximum (134348832 bytes) and the {rest} bytes left in the \
             file: {}; kept the 7 packets before it",
            damaged(rest)
        )]
    );
    // Really cut short, in block 2001.
    let at = blocks[2000];
    let (table, strict) = read_both(dir.path(), &bytes[..at + 40]);
    assert_eq!(table.rows, whole.rows[..1998]);
    assert_eq!(
        table.report.warnings,
        [format!(
            "the file ends in the middle of block 2001 (frame 1999) at byte offset {at}, which \
             claims a block length of {} bytes: only 40 bytes are left (the file is cut short); \
             kept the 1998 packets before it",
            blocks[2001] - at
        )]
    );
    assert_eq!(record_error(strict).0, Origin::Frame(1999));
    // The interface description (block 2) claims link type 105.
    let mut relinked = bytes;
    relinked[blocks[1] + 8..blocks[1] + 10].copy_from_slice(&105u16.to_le_bytes());
    let (table, strict) = read_both(dir.path(), &relinked);
    assert_eq!(
        table.report.warnings,
        [
            "link type 105 (IEEE 802.11) is not supported: 3103 packets have only the frame.* \
          fields (the first is frame 1)"
        ]
    );
    assert_eq!(record_error(strict).0, Origin::Frame(1));
}

// ---- Writing captures ----

/// Captured bytes and original length.
type Packet = (Vec<u8>, usize);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Layout {
    Micro,
    BigNano,
}

fn write_pcap(path: &Path, linktype: u32, packets: &[Packet], layout: Layout) {
    let be = layout == Layout::BigNano;
    let u32b = |v: u32| if be { v.to_be_bytes() } else { v.to_le_bytes() };
    let u16b = |v: u16| if be { v.to_be_bytes() } else { v.to_le_bytes() };
    let magic = if be { 0xa1b2_3c4d } else { 0xa1b2_c3d4 };
    let mut out = Vec::new();
    out.extend(u32b(magic));
    out.extend(u16b(2));
    out.extend(u16b(4));
    out.extend([0; 8]);
    out.extend(u32b(262_144));
    out.extend(u32b(linktype));
    for (i, (data, len)) in packets.iter().enumerate() {
        let fraction = if be { 123_456_789 } else { 123_456 } + i as u32;
        for word in [
            1_500_000_000 + i as u32,
            fraction,
            data.len() as u32,
            *len as u32,
        ] {
            out.extend(u32b(word));
        }
        out.extend(data);
    }
    std::fs::write(path, out).expect("writing a capture");
}

fn pcapng_block(kind: u32, body: &[u8]) -> Vec<u8> {
    let padded = body.len().div_ceil(4) * 4;
    let total = (12 + padded) as u32;
    let mut out = Vec::new();
    out.extend(kind.to_le_bytes());
    out.extend(total.to_le_bytes());
    out.extend(body);
    out.resize(8 + padded, 0);
    out.extend(total.to_le_bytes());
    out
}

fn section_header() -> Vec<u8> {
    let mut body = 0x1a2b_3c4d_u32.to_le_bytes().to_vec();
    body.extend([1, 0, 0, 0]);
    body.extend((-1i64).to_le_bytes());
    pcapng_block(0x0a0d_0d0a, &body)
}

/// An interface description; `tsresol` is the raw `if_tsresol` option, if any.
fn interface(linktype: u16, tsresol: Option<u8>) -> Vec<u8> {
    let mut body = linktype.to_le_bytes().to_vec();
    body.extend([0, 0, 0, 0, 0, 0]);
    if let Some(resolution) = tsresol {
        body.extend([9, 0, 1, 0, resolution, 0, 0, 0, 0, 0, 0, 0]);
    }
    pcapng_block(1, &body)
}

fn enhanced_packet(interface: u32, ticks: u64, (data, len): &Packet) -> Vec<u8> {
    let mut body = interface.to_le_bytes().to_vec();
    body.extend(((ticks >> 32) as u32).to_le_bytes());
    body.extend((ticks as u32).to_le_bytes());
    body.extend((data.len() as u32).to_le_bytes());
    body.extend((*len as u32).to_le_bytes());
    body.extend(data);
    pcapng_block(6, &body)
}

/// The packets spread over interfaces: IP packets alternately as raw IP (nanoseconds) and
/// Linux cooked v2 (2^-20 s), the rest as Ethernet (microseconds); the last quarter in a
/// second section with one Ethernet interface in milliseconds.
fn write_pcapng(path: &Path, packets: &[Packet]) {
    let mut out = section_header();
    out.extend(interface(1, None));
    out.extend(interface(101, Some(9)));
    out.extend(interface(276, Some(0x80 | 20)));
    let second = packets.len() * 3 / 4;
    for (i, packet) in packets[..second].iter().enumerate() {
        let seconds = 1_500_000_000 + i as u64;
        let is_ip = packet.0.len() >= 14 && matches!(&packet.0[12..14], [0x08, 0] | [0x86, 0xdd]);
        let (id, units, packet) = match (is_ip, i % 2) {
            (false, _) => (0, 1_000_000, packet.clone()),
            (true, 0) => (1, 1_000_000_000, relink(packet, 101)),
            (true, _) => (2, 1 << 20, relink(packet, 276)),
        };
        out.extend(enhanced_packet(
            id,
            seconds * units + units / 3 + i as u64,
            &packet,
        ));
    }
    out.extend(section_header());
    out.extend(interface(1, Some(3)));
    for (i, packet) in packets[second..].iter().enumerate() {
        out.extend(enhanced_packet(
            0,
            (1_600_000_000 + i as u64) * 1000 + 7,
            packet,
        ));
    }
    std::fs::write(path, out).expect("writing a capture");
}

/// The packets of a little-endian microsecond pcap file.
fn legacy_packets(file: &[u8]) -> Vec<Packet> {
    let word =
        |at: usize| u32::from_le_bytes(file[at..at + 4].try_into().expect("4 bytes")) as usize;
    let mut packets = Vec::new();
    let mut at = 24;
    while at + 16 <= file.len() {
        let (captured, len) = (word(at + 8), word(at + 12));
        packets.push((file[at + 16..at + 16 + captured].to_vec(), len));
        at += 16 + captured;
    }
    packets
}

/// An Ethernet frame with its Ethernet header replaced by that of another link type: raw IP
/// (101), Linux cooked v1 (113) or v2 (276).  Frames too short keep their bytes.
fn relink((frame, len): &Packet, linktype: u32) -> Packet {
    if frame.len() < 14 {
        return (frame.clone(), *len);
    }
    let (source, ether_type, payload) = (&frame[6..12], &frame[12..14], &frame[14..]);
    let mut header = Vec::new();
    match linktype {
        113 => {
            header.extend([0, 0, 0, 1, 0, 6]);
            header.extend(source);
            header.extend([0, 0]);
            header.extend(ether_type);
        }
        276 => {
            header.extend(ether_type);
            header.extend([0, 0, 0, 0, 0, 2, 0, 1, 0, 6]);
            header.extend(source);
            header.extend([0, 0]);
        }
        _ => {}
    }
    let new_len = len - 14 + header.len();
    header.extend(payload);
    (header, new_len)
}

// ---- Building packets ----

const CLIENT: [u8; 4] = [10, 0, 0, 1];
const SERVER: [u8; 4] = [10, 0, 0, 2];
const ROUTER: [u8; 4] = [10, 0, 0, 9];
const FIN: u16 = 1;
const SYN: u16 = 2;
const RST: u16 = 4;
const PSH: u16 = 8;
const ACK: u16 = 16;
const NOP: u8 = 1;

fn mss(value: u16) -> Vec<u8> {
    let [a, b] = value.to_be_bytes();
    vec![2, 4, a, b]
}

fn wscale(shift: u8) -> Vec<u8> {
    vec![3, 3, shift]
}

fn timestamps(tsval: u32, tsecr: u32) -> Vec<u8> {
    let mut option = vec![8, 10];
    option.extend(tsval.to_be_bytes());
    option.extend(tsecr.to_be_bytes());
    option
}

#[derive(Clone, Debug)]
struct Tcp {
    ports: (u16, u16),
    seq: u32,
    ack: u32,
    flags: u16,
    window: u16,
    options: Vec<u8>,
    payload: Vec<u8>,
}

fn tcp(ports: (u16, u16), seq: u32, ack: u32, flags: u16) -> Tcp {
    Tcp {
        ports,
        seq,
        ack,
        flags,
        window: 1000,
        options: Vec::new(),
        payload: Vec::new(),
    }
}

impl Tcp {
    fn window(mut self, window: u16) -> Tcp {
        self.window = window;
        self
    }

    fn options(mut self, options: &[u8]) -> Tcp {
        self.options = options.to_vec();
        self
    }

    fn payload(mut self, payload: &[u8]) -> Tcp {
        self.payload = payload.to_vec();
        self
    }

    fn bytes(&self) -> Vec<u8> {
        let mut options = self.options.clone();
        options.resize(options.len().div_ceil(4) * 4, 0);
        let offset = (5 + options.len() / 4) as u16;
        let mut out = Vec::new();
        for half in [self.ports.0, self.ports.1] {
            out.extend(half.to_be_bytes());
        }
        out.extend(self.seq.to_be_bytes());
        out.extend(self.ack.to_be_bytes());
        out.extend(((offset << 12) | self.flags).to_be_bytes());
        out.extend(self.window.to_be_bytes());
        out.extend([0, 0, 0, 0]);
        out.extend(options);
        out.extend(&self.payload);
        out
    }
}

fn udp(ports: (u16, u16), payload: &[u8], length: Option<u16>) -> Vec<u8> {
    let mut out = Vec::new();
    let length = length.unwrap_or(8 + payload.len() as u16);
    for half in [ports.0, ports.1, length, 0] {
        out.extend(half.to_be_bytes());
    }
    out.extend(payload);
    out
}

fn icmp(kind: u8, code: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![kind, code, 0, 0, 0, 0, 0, 0];
    out.extend(payload);
    out
}

/// An IPv4 header's fields; `total` overrides the total length.
#[derive(Clone, Copy, Debug)]
struct V4 {
    proto: u8,
    src: [u8; 4],
    dst: [u8; 4],
    id: u16,
    flags: u16,
    fragment: u16,
    total: Option<u16>,
}

fn v4(proto: u8, src: [u8; 4], dst: [u8; 4]) -> V4 {
    V4 {
        proto,
        src,
        dst,
        id: 0x1234,
        flags: 2,
        fragment: 0,
        total: None,
    }
}

impl V4 {
    fn wrap(self, payload: &[u8]) -> Vec<u8> {
        let total = self.total.unwrap_or(20 + payload.len() as u16);
        let mut out = vec![0x45, 0];
        for half in [total, self.id, (self.flags << 13) | self.fragment] {
            out.extend(half.to_be_bytes());
        }
        out.extend([64, self.proto, 0, 0]);
        out.extend(self.src);
        out.extend(self.dst);
        out.extend(payload);
        out
    }
}

fn v6(next: u8, src: &str, dst: &str, payload: &[u8], length: Option<u16>) -> Vec<u8> {
    let mut out = vec![0x60, 0, 0, 0];
    out.extend(length.unwrap_or(payload.len() as u16).to_be_bytes());
    out.extend([next, 64]);
    for address in [src, dst] {
        let address: std::net::Ipv6Addr = address.parse().expect("an IPv6 address");
        out.extend(address.octets());
    }
    out.extend(payload);
    out
}

fn eth(ether_type: u16, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![
        0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0, 0x11, 0x22, 0x33, 0x44, 0x55,
    ];
    out.extend(ether_type.to_be_bytes());
    out.extend(payload);
    out
}

fn whole(frame: Vec<u8>) -> Packet {
    let len = frame.len();
    (frame, len)
}

/// A frame cut to its first `n` bytes by the snap length.
fn cut(frame: &[u8], n: usize) -> Packet {
    (frame[..n.min(frame.len())].to_vec(), frame.len())
}

fn ip4(v4: V4, payload: &[u8]) -> Packet {
    whole(eth(0x0800, &v4.wrap(payload)))
}

fn c2s(segment: &Tcp) -> Packet {
    ip4(v4(6, CLIENT, SERVER), &segment.bytes())
}

fn s2c(segment: &Tcp) -> Packet {
    ip4(v4(6, SERVER, CLIENT), &segment.bytes())
}

// ---- The edge cases ----

fn edge_cases() -> Vec<Packet> {
    let mut packets = Vec::new();
    packets.extend(window_scaling());
    packets.extend(stream_numbering());
    packets.extend(icmp_errors());
    packets.extend(fragments_and_tunnels());
    packets.extend(truncated_headers());
    packets.extend(bogus_headers());
    packets.extend(tcp_options());
    packets
}

/// Handshakes with and without window scaling on either side, or not captured.
fn window_scaling() -> Vec<Packet> {
    let syn = |port, seq, options: &[u8]| {
        c2s(&tcp((port, 80), seq, 0, SYN).window(65535).options(options))
    };
    let synack = |port, seq, ack, options: &[u8]| {
        s2c(&tcp((80, port), seq, ack, SYN | ACK)
            .window(29200)
            .options(options))
    };
    let out = |port, seq, ack| c2s(&tcp((port, 80), seq, ack, ACK).window(500));
    let back = |port, seq, ack| s2c(&tcp((80, port), seq, ack, ACK).window(300));
    let both = [&mss(1460)[..], &[NOP], &wscale(7)].concat();
    vec![
        syn(1001, 1000, &both),
        synack(
            1001,
            5000,
            1001,
            &[&mss(1400)[..], &[NOP], &wscale(8)].concat(),
        ),
        out(1001, 1001, 5001),
        c2s(&tcp((1001, 80), 1001, 5001, ACK | PSH)
            .window(500)
            .payload(b"0123456789")),
        back(1001, 5001, 1011),
        c2s(&tcp((1001, 80), 1011, 5001, ACK | FIN).window(500)),
        s2c(&tcp((80, 1001), 5001, 1012, ACK | FIN).window(300)),
        out(1001, 1012, 5002),
        syn(1002, 2000, &wscale(7)),
        synack(1002, 6000, 2001, &[]),
        out(1002, 2001, 6001),
        back(1002, 6001, 2001),
        syn(1003, 3000, &[]),
        synack(1003, 7000, 3001, &wscale(8)),
        out(1003, 3001, 7001),
        back(1003, 7001, 3001),
        syn(1004, 4000, &wscale(7)),
        out(1004, 4001, 8001),
        back(1004, 8001, 4001),
        synack(1005, 9000, 4501, &wscale(8)),
        out(1005, 4501, 9001),
        back(1005, 9001, 4501),
        syn(1006, 1000, &[]),
        out(1006, 1001, 5001),
        back(1006, 5001, 1001),
        synack(1007, 5000, 1001, &[]),
        out(1007, 1001, 5001),
        c2s(&tcp((1008, 80), 1000, 5001, ACK).options(&wscale(3))),
        c2s(&tcp((1008, 80), 1000, 5001, ACK)),
        syn(1009, 1000, &wscale(15)),
        synack(1009, 5000, 1001, &wscale(20)),
        out(1009, 1001, 5001),
        back(1009, 5001, 1001),
    ]
}

/// Port reuse, retransmitted SYNs, SYN-ACKs with new sequence numbers, no handshake.
fn stream_numbering() -> Vec<Packet> {
    let c = |port, seq, ack, flags| c2s(&tcp((port, 80), seq, ack, flags));
    let s = |port, seq, ack, flags| s2c(&tcp((80, port), seq, ack, flags));
    vec![
        c2s(&tcp((1101, 80), 12345, 67890, ACK | PSH).payload(b"abc")),
        s(1101, 67890, 12348, ACK),
        c(1101, 12348, 67890, ACK | FIN),
        c(1102, 1000, 0, SYN),
        c(1102, 1000, 0, SYN),
        c(1102, 3000, 0, SYN),
        s(1102, 7000, 3001, SYN | ACK),
        c(1102, 3001, 7001, ACK),
        c(1102, 3001, 7001, ACK | FIN),
        s(1102, 7001, 3002, ACK | FIN),
        c(1102, 90000, 0, SYN),
        c(1103, 1000, 0, SYN),
        s(1103, 5000, 1001, SYN | ACK),
        c(1103, 1001, 5001, ACK),
        s(1103, 8000, 1001, SYN | ACK),
        s(1103, 5001, 1001, ACK),
        c(1104, 1000, 0, RST),
        c(1105, 1000, 777, FIN),
        c(1105, 1001, 777, ACK),
        s(1106, 5000, 0, PSH),
        c(1106, 777, 0, SYN),
        s(1106, 9000, 778, SYN | ACK),
        s(1107, 5000, 100, PSH | ACK),
        c(1107, 777, 0, SYN),
        c2s(&tcp((1108, 80), 100, 0, SYN | FIN).payload(b"abc")),
        c(1109, 100, 0, SYN),
        s(1109, 500, 101, SYN | ACK),
        s(1109, 900, 0, SYN),
        c(1109, 101, 501, ACK),
        c(1110, 0xffff_fff0, 0, SYN),
        c2s(&tcp((1110, 80), 0xffff_fff1, 0, ACK).payload(&[7; 40])),
        c2s(&tcp((1111, 80), 1, 2, 0x0fff)),
    ]
}

/// ICMP and ICMPv6 errors quoting TCP, UDP and ICMP, in full and cut.
fn icmp_errors() -> Vec<Packet> {
    let error = |kind, code, quoted: &[u8]| ip4(v4(1, ROUTER, CLIENT), &icmp(kind, code, quoted));
    let quoted = |segment: Tcp| v4(6, CLIENT, SERVER).wrap(&segment.bytes());
    let acked = quoted(
        tcp((2001, 80), 1000, 500, ACK)
            .window(100)
            .options(&[&[NOP, NOP][..], &timestamps(1, 2)].concat()),
    );
    let syn = quoted(
        tcp((2002, 80), 1000, 0, SYN)
            .window(100)
            .options(&wscale(3)),
    );
    let error6 = |kind, quoted: &[u8]| {
        whole(eth(
            0x86dd,
            &v6(
                58,
                "2001:db8::9",
                "2001:db8::1",
                &icmp(kind, 0, quoted),
                None,
            ),
        ))
    };
    let quoted6 = v6(
        6,
        "2001:db8::1",
        "2001:db8::2",
        &tcp((2003, 443), 5, 7, ACK)
            .options(&timestamps(1, 2))
            .bytes(),
        None,
    );
    let mut packets = vec![
        error(3, 3, &syn[..28]),
        error(3, 3, &syn),
        c2s(&tcp((2002, 80), 1001, 9, ACK).window(10)),
        error(3, 3, &acked),
        error(5, 1, &acked),
        error(4, 0, &acked),
        error(11, 0, &acked),
        error(12, 0, &acked),
        error(3, 4, &acked[..30]),
        error(
            3,
            3,
            &v4(6, CLIENT, SERVER).wrap(&tcp((2001, 80), 1000, 500, ACK).payload(&[1; 30]).bytes()),
        ),
        error(
            3,
            3,
            &V4 {
                total: Some(1500),
                ..v4(6, CLIENT, SERVER)
            }
            .wrap(&tcp((2001, 80), 1, 2, ACK).bytes()),
        ),
        error(
            3,
            3,
            &v4(17, CLIENT, SERVER).wrap(&udp((5353, 53), b"hello", None)),
        ),
        error(11, 0, &v4(1, CLIENT, SERVER).wrap(&icmp(8, 0, b"ping"))),
        ip4(v4(1, CLIENT, SERVER), &icmp(8, 0, b"abcd")),
        ip4(v4(1, SERVER, CLIENT), &icmp(0, 0, b"abcd")),
        ip4(v4(1, CLIENT, SERVER), &[8, 0, 0, 0, 0]),
        ip4(v4(1, CLIENT, SERVER), &[8, 0, 0, 0, 0, 0]),
        error6(
            3,
            &v6(
                17,
                "2001:db8::1",
                "2001:db8::2",
                &udp((1, 2), b"abc", None),
                None,
            ),
        ),
        error6(2, &quoted6),
        error6(4, &quoted6),
        whole(eth(
            0x86dd,
            &v6(
                58,
                "2001:db8::1",
                "2001:db8::2",
                &icmp(128, 0, b"ping"),
                None,
            ),
        )),
    ];
    for n in [44, 48, 52, 56, 60, quoted6.len()] {
        packets.push(error6(1, &quoted6[..n]));
    }
    packets
}

/// IPv4 and IPv6 fragments (whole, out of order, incomplete, cut), IP in IP, VLAN tags,
/// IPv6 extension headers and addresses.
fn fragments_and_tunnels() -> Vec<Packet> {
    let datagram = udp((5000, 6000), &[b'A'; 100], None);
    let fragment = |id, flags, offset, data: &[u8]| {
        ip4(
            V4 {
                id,
                flags,
                fragment: offset,
                ..v4(17, CLIENT, SERVER)
            },
            data,
        )
    };
    let segment = [
        tcp((7000, 80), 1000, 0, SYN).options(&mss(1400)).bytes(),
        vec![b'B'; 40],
    ]
    .concat();
    let first = fragment(9, 1, 0, &datagram[..48]);
    let mut packets = vec![
        fragment(7, 1, 0, &datagram[..48]),
        fragment(7, 0, 6, &datagram[48..]),
        fragment(8, 0, 6, &datagram[48..]),
        fragment(8, 1, 0, &datagram[..48]),
        first.clone(),
        cut(&first.0, 42),
        fragment(10, 0, 6, &datagram[48..]),
        ip4(
            V4 {
                id: 11,
                flags: 1,
                ..v4(6, CLIENT, SERVER)
            },
            &segment[..32],
        ),
        ip4(
            V4 {
                id: 11,
                flags: 0,
                fragment: 4,
                ..v4(6, CLIENT, SERVER)
            },
            &segment[32..],
        ),
        ip4(
            v4(4, CLIENT, SERVER),
            &v4(6, [192, 168, 0, 1], [192, 168, 0, 2]).wrap(&tcp((4000, 80), 1, 0, SYN).bytes()),
        ),
        ip4(
            v4(41, CLIENT, SERVER),
            &v6(
                17,
                "2001:db8::1",
                "2001:db8::2",
                &udp((4000, 80), b"x", None),
                None,
            ),
        ),
        whole(eth(
            0x86dd,
            &v6(
                4,
                "2001:db8::1",
                "2001:db8::2",
                &v4(17, CLIENT, SERVER).wrap(&udp((4001, 81), b"x", None)),
                None,
            ),
        )),
    ];
    let mut tagged = eth(0x8100, &[0, 100, 0x08, 0]);
    tagged.extend(v4(17, CLIENT, SERVER).wrap(&udp((1, 2), b"v", None)));
    packets.push(whole(tagged));
    let mut double = eth(0x88a8, &[0, 5, 0x81, 0, 0, 100, 0x86, 0xdd]);
    double.extend(v6(
        17,
        "2001:db8::1",
        "2001:db8::2",
        &udp((1, 2), b"w", None),
        None,
    ));
    packets.push(whole(double));
    let hop_by_hop = [
        &[6u8, 0, 1, 4, 0, 0, 0, 0][..],
        &tcp((3000, 80), 9, 0, SYN).bytes(),
    ]
    .concat();
    packets.push(whole(eth(
        0x86dd,
        &v6(0, "2001:db8::1", "2001:db8::2", &hop_by_hop, None),
    )));
    let datagram6 = udp((4000, 4001), &[b'Q'; 60], None);
    let fragment6 = |offset: u16, more: u16, data: &[u8]| {
        let mut payload = vec![17, 0];
        payload.extend(((offset << 3) | more).to_be_bytes());
        payload.extend(99u32.to_be_bytes());
        payload.extend(data);
        whole(eth(
            0x86dd,
            &v6(44, "2001:db8::1", "2001:db8::2", &payload, None),
        ))
    };
    packets.push(fragment6(0, 1, &datagram6[..32]));
    packets.push(fragment6(4, 0, &datagram6[32..]));
    for address in [
        "::ffff:1.2.3.4",
        "::1.2.3.4",
        "2001:0:0:1::1",
        "::",
        "::1",
        "64:ff9b::102:304",
        "fe80::1:0:0:1",
    ] {
        packets.push(whole(eth(
            0x86dd,
            &v6(17, address, "::2", &udp((1, 2), b"", None), None),
        )));
    }
    packets
}

/// Headers cut short by the snap length, at every length that changes what tshark shows.
fn truncated_headers() -> Vec<Packet> {
    let mut packets = Vec::new();
    let syn = c2s(&tcp((7100, 80), 1000, 0, SYN)).0;
    for n in [
        5, 12, 13, 14, 15, 20, 34, 36, 38, 40, 42, 46, 47, 48, 49, 50, 52, 53,
    ] {
        packets.push(cut(&syn, n));
    }
    let syn6 = eth(
        0x86dd,
        &v6(
            6,
            "2001:db8::1",
            "2001:db8::2",
            &tcp((7200, 80), 1000, 0, SYN).bytes(),
            None,
        ),
    );
    for n in [15, 20, 21, 22, 23, 30, 38, 53, 54, 60, 70] {
        packets.push(cut(&syn6, n));
    }
    let datagram = ip4(v4(17, CLIENT, SERVER), &udp((53, 54), b"xx", None)).0;
    for n in [19, 20, 21, 22, 36, 37, 38, 40, 41] {
        packets.push(cut(&datagram, n));
    }
    let stamped = c2s(&tcp((1303, 80), 1, 2, ACK).options(&timestamps(77, 88))).0;
    for n in [56, 60, 62, 64] {
        packets.push(cut(&stamped, n));
    }
    packets
}

/// Header fields that contradict each other or the frame.
fn bogus_headers() -> Vec<Packet> {
    let datagram = v4(17, CLIENT, SERVER).wrap(&udp((53, 54), b"xx", None));
    let with_first_byte = |byte: u8| {
        let mut ip = datagram.clone();
        ip[0] = byte;
        whole(eth(0x0800, &ip))
    };
    let mut offset3 = tcp((1, 2), 3, 4, ACK).bytes();
    offset3[12] = 0x30;
    let short = tcp((1, 2), 3, 4, ACK)
        .options(&[&timestamps(5, 6)[..], &mss(1)].concat())
        .bytes();
    let mut packets = vec![
        with_first_byte(0x44),
        with_first_byte(0x55),
        with_first_byte(0x65),
        ip4(
            V4 {
                total: Some(10),
                ..v4(17, CLIENT, SERVER)
            },
            &udp((53, 54), b"xx", None),
        ),
        ip4(
            V4 {
                total: Some(24),
                ..v4(17, CLIENT, SERVER)
            },
            &udp((53, 54), b"xx", None),
        ),
        ip4(v4(17, CLIENT, SERVER), &udp((53, 54), b"xx", Some(3))),
        ip4(v4(17, CLIENT, SERVER), &udp((53, 54), b"xx", Some(300))),
        ip4(v4(6, CLIENT, SERVER), &offset3),
        ip4(
            V4 {
                total: Some(0),
                ..v4(17, CLIENT, SERVER)
            },
            &udp((1, 2), b"abc", None),
        ),
        ip4(
            V4 {
                total: Some(0),
                ..v4(6, CLIENT, SERVER)
            },
            &tcp((1, 2), 3, 4, ACK).payload(b"zz").bytes(),
        ),
        whole(eth(
            0x86dd,
            &v6(
                17,
                "2001:db8::1",
                "2001:db8::2",
                &udp((1, 2), b"abc", None),
                Some(0),
            ),
        )),
        ip4(
            V4 {
                flags: 4,
                ..v4(17, CLIENT, SERVER)
            },
            &udp((1, 2), b"evil", None),
        ),
        ip4(
            V4 {
                flags: 7,
                fragment: 3,
                ..v4(17, CLIENT, SERVER)
            },
            &udp((1, 2), b"", None),
        ),
        whole(eth(
            0x0806,
            &[&[0, 1, 8, 0, 6, 4, 0, 1][..], &[0; 20]].concat(),
        )),
        whole(eth(0x05dc, &[0xaa; 30])),
    ];
    for total in [36, 38, 40, 44, 48, 52, 56] {
        packets.push(ip4(
            V4 {
                total: Some(total),
                ..v4(6, CLIENT, SERVER)
            },
            &short,
        ));
    }
    packets
}

/// TCP options tshark skips or stops at.
fn tcp_options() -> Vec<Packet> {
    let with = |options: &[u8]| c2s(&tcp((1304, 80), 1, 2, ACK).options(options));
    let ts = timestamps(5, 6);
    vec![
        with(&[&[0x1e, 4, 0, 0][..], &ts].concat()),
        with(&[&[2, 3, 5, NOP][..], &ts].concat()),
        with(&[&[0, 1, 1, 1][..], &ts].concat()),
        with(&[&[5, 10][..], &[0; 8], &ts].concat()),
        with(&[&[5, 11][..], &[0; 9], &ts].concat()),
        with(&[&[0x1e, 1][..], &ts].concat()),
        with(&[&mss(5)[..], &[0x1e, 16], &ts].concat()),
        with(&[&[4, 2, 3, 3, 9][..], &ts, &mss(1460)].concat()),
    ]
}
