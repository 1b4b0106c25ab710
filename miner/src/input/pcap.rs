//! Packet captures: one row of tshark-named header fields per packet.
//!
//! [`read_capture`] (and [`read_capture_with`], which can be strict about damage) reads a pcap
//! file (either byte order, micro- or nanosecond timestamps) or a pcapng file (any number of
//! sections and interfaces, each with its own link type and timestamp resolution), telling
//! the formats apart by their magic number.  Each packet becomes one row under [`COLUMNS`],
//! named and valued as Wireshark 4.0 with default preferences prints them with
//! `tshark -r FILE -T fields -E occurrence=f -e FIELD ...`:
//!
//! - integers are [`Cell::Int`] whatever base tshark prints them in (`ip.id` `0x1234` is 4660),
//!   flags are 0 or 1, addresses are text in tshark's notation, and `frame.time_epoch` is a
//!   [`Cell::Real`] number of seconds;
//! - a field tshark would not print for the packet is [`Cell::Missing`];
//! - when a header occurs twice (an ICMP error quoting the packet that caused it, IP in IP) the
//!   first occurrence wins, as with `-E occurrence=f`;
//! - a header cut short by the snap length, or by the length its IP header claims, yields the
//!   fields tshark can still read and nothing after the first one it cannot; lengths come from
//!   the headers (`tcp.len` is `ip.len - ip.hdr_len - tcp.hdr_len`), so header-only captures
//!   keep their real sizes;
//! - IPv4 and IPv6 fragments are reassembled as tshark does: the transport fields appear on the
//!   frame that completes the datagram, and on a first fragment that was not captured whole;
//! - pcapng simple packet blocks have no timestamp, so their `frame.time_epoch` is missing.
//!
//! The TCP fields that depend on earlier packets follow tshark's analysis:
//!
//! - `tcp.stream` numbers conversations (address and port pairs) in order of appearance; a SYN
//!   whose sequence number differs from the initial one already seen in its direction starts a
//!   new conversation (port reuse); segments quoted in ICMP errors count, as in tshark;
//! - `tcp.seq`, `tcp.ack` and `tcp.nxtseq` are relative to each direction's initial sequence
//!   number: a SYN sets it, else the first segment seen sets it to one less than its sequence
//!   number (so it counts from 1), and the first acknowledgement seen in the other direction
//!   sets it for that direction; `tcp.nxtseq` adds one for SYN or FIN; `tcp.ack` is the raw
//!   number when the ACK flag is off; `tcp.seq_raw` and `tcp.ack_raw` are the raw numbers;
//! - `tcp.window_size` is the window scaled by the shift announced in the handshake;
//!   `tcp.window_size_scalefactor` is the multiplier, -1 while the shift is unknown (handshake
//!   not captured) and -2 when the handshake showed that scaling is not used (a SYN without the
//!   option, or a SYN-ACK without it); SYN segments are never scaled and have no scale factor;
//! - a segment shorter than its own header (by `ip.len`) and one quoted in an ICMP error get
//!   raw sequence numbers and no `tcp.len`/`tcp.nxtseq`, as in tshark.
//!
//! Link types: Ethernet (1, with 802.1Q/802.1ad tags), raw IP (101, 12, 14; IPv4-only 228,
//! IPv6-only 229), Linux cooked captures v1 (113) and v2 (276).  Packets of any other link
//! type get only the `frame.*` fields, with one warning per link type naming it (number and
//! usual name, as "link type 105 (IEEE 802.11)") and counting its packets; strict, the first
//! such packet is an error.  The file formats are parsed by pcap-parser and the headers by
//! etherparse, except for the few bytes read here: the record and block lengths (checked
//! before pcap-parser reads them, see below), the Linux cooked headers (etherparse's SLL
//! parser rejects common hardware types, such as the loopback of `tcpdump -i any`, and it has
//! no SLL2 parser), the ICMP type and code (its ICMP parsers want whole messages) and the flag
//! bits etherparse does not keep.
//!
//! Deliberate deviations from tshark:
//!
//! - `_ws.col.protocol` is not tshark's Protocol column, which names the highest layer
//!   dissected (`TLSv1.2`, `DNS`, ...).  It is the transport protocol of the packet, `TCP`,
//!   `UDP`, `ICMP` or `ICMPv6` (the outer one for an ICMP error), else `IPv4` or `IPv6` for
//!   other IP packets, else missing; rules such as `filter_equals _ws.col.protocol = TCP` rely
//!   on that.
//! - Only the layers above are followed: tunnels other than IP in IP (GRE, MPLS, PPPoE, VXLAN,
//!   ...), IPsec AH in IPv4 and IPv6 extension headers after a fragment header are not, so the
//!   headers behind them are missing where tshark would show them.
//!
//! Damage ends the reading: the packets before it are kept, and one warning in
//! [`ReadReport::warnings`] names the frame (pcap) or block (pcapng, counting from 1 at the
//! first section header, with its frame if it holds a packet), its byte offset and what is
//! wrong, even when no packet was read.  Before the parser reads a record or block, its
//! length fields are checked, so that a corrupt length is not taken for a file cut short nor
//! its garbage for packets:
//!
//! - a pcap captured length larger than both the snapshot length and the maximum Wireshark
//!   accepts for the link type (262144 bytes for most), or than the reader's buffer (256 MiB),
//!   a pcapng block length that is not a multiple of 4, too small for its type, larger than
//!   the pcapng maximum or different from the copy at the block's end, and an enhanced
//!   packet's captured length larger than its block are corrupt lengths;
//! - a record or block running past the end of the file is a file cut short, unless
//!   plausible records follow inside it (two whole pcap records with sensible timestamps and
//!   lengths, or one ending the file; a whole pcapng block of a known type with a matching
//!   end length): then its length is corrupt;
//! - a pcapng block the parser rejects otherwise, and a packet on an interface its section
//!   does not describe, are damage too.
//!
//! Blocks of unknown type (and obsolete pcapng packet blocks, type 2) are skipped with a
//! warning, strict or not.  Strict ([`read_capture_with`]), damage that ends the reading is an
//! error instead of a warning: [`InputError::Record`] with the frame as origin, or
//! [`InputError::Format`] for damage in a block that holds no packet.  A file that is not a
//! capture at all, is empty, or whose pcap file header or first pcapng section header is
//! damaged (nothing can be read) is an [`InputError::Format`] either way, the latter naming
//! the damage as above.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::fs::File;
use std::io::Read;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;

use etherparse::{
    EtherType, Ethernet2Slice, IpNumber, Ipv4Header, Ipv6ExtensionSlice, Ipv6ExtensionsSlice,
    Ipv6Header, SingleVlanSlice, TcpHeader, TcpOptionElement, TcpOptionReadError,
    TcpOptionsIterator, UdpHeader,
};
use pcap_parser::pcapng::Block;
use pcap_parser::traits::{PcapNGPacketBlock, PcapReaderIterator};
use pcap_parser::{PcapBlockOwned, PcapError, PcapHeader, create_reader};

use super::{Cell, InputError, Origin, RawTable, ReadReport};

macro_rules! columns {
    ($($col:ident = $name:literal,)*) => {
        /// A column of a capture row; the variants are in the order of [`COLUMNS`].
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        enum Col { $($col,)* }

        /// The columns of a capture row, in order (tshark field names).
        pub const COLUMNS: &[&str] = &[$($name,)*];
    };
}

columns! {
    FrameNumber = "frame.number",
    FrameTimeEpoch = "frame.time_epoch",
    FrameLen = "frame.len",
    FrameCapLen = "frame.cap_len",
    EthSrc = "eth.src",
    EthDst = "eth.dst",
    IpVersion = "ip.version",
    IpHdrLen = "ip.hdr_len",
    IpDsfield = "ip.dsfield",
    IpLen = "ip.len",
    IpId = "ip.id",
    IpFlags = "ip.flags",
    IpFlagsDf = "ip.flags.df",
    IpFlagsMf = "ip.flags.mf",
    IpFragOffset = "ip.frag_offset",
    IpTtl = "ip.ttl",
    IpProto = "ip.proto",
    IpSrc = "ip.src",
    IpDst = "ip.dst",
    Ipv6Src = "ipv6.src",
    Ipv6Dst = "ipv6.dst",
    Ipv6Plen = "ipv6.plen",
    Ipv6Nxt = "ipv6.nxt",
    Ipv6Hlim = "ipv6.hlim",
    TcpSrcport = "tcp.srcport",
    TcpDstport = "tcp.dstport",
    TcpStream = "tcp.stream",
    TcpLen = "tcp.len",
    TcpSeq = "tcp.seq",
    TcpSeqRaw = "tcp.seq_raw",
    TcpNxtseq = "tcp.nxtseq",
    TcpAck = "tcp.ack",
    TcpAckRaw = "tcp.ack_raw",
    TcpHdrLen = "tcp.hdr_len",
    TcpFlags = "tcp.flags",
    TcpFlagsFin = "tcp.flags.fin",
    TcpFlagsSyn = "tcp.flags.syn",
    TcpFlagsReset = "tcp.flags.reset",
    TcpFlagsPush = "tcp.flags.push",
    TcpFlagsAck = "tcp.flags.ack",
    TcpFlagsUrg = "tcp.flags.urg",
    TcpWindowSizeValue = "tcp.window_size_value",
    TcpWindowSize = "tcp.window_size",
    TcpWindowSizeScalefactor = "tcp.window_size_scalefactor",
    TcpUrgentPointer = "tcp.urgent_pointer",
    TcpMss = "tcp.options.mss_val",
    TcpWscaleShift = "tcp.options.wscale.shift",
    TcpTsval = "tcp.options.timestamp.tsval",
    TcpTsecr = "tcp.options.timestamp.tsecr",
    UdpSrcport = "udp.srcport",
    UdpDstport = "udp.dstport",
    UdpLength = "udp.length",
    IcmpType = "icmp.type",
    IcmpCode = "icmp.code",
    Protocol = "_ws.col.protocol",
}

/// Reads a pcap or pcapng file (format detected from the magic number, not the extension);
/// damage is a warning, as with [`read_capture_with`] not strict.
pub fn read_capture(path: &Path) -> Result<RawTable, InputError> {
    read_capture_with(path, false)
}

/// Reads a pcap or pcapng file.  Not `strict`, damage that ends the reading early keeps the
/// packets before it and is a warning, and so is a link type without decoder; `strict`, both
/// are errors: [`InputError::Record`] naming the frame, or [`InputError::Format`] for damage
/// outside packets (in an interface description, say).
pub fn read_capture_with(path: &Path, strict: bool) -> Result<RawTable, InputError> {
    let file = File::open(path).map_err(|source| InputError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    // The size tells a file cut short from a length gone wrong; a pipe or device has none.
    let size = file
        .metadata()
        .ok()
        .filter(|m| m.is_file())
        .map(|m| m.len());
    read_from(path, file, size, strict)
}

/// Reads a capture of `size` bytes, if known, from `input`; `path` names it in errors.
fn read_from(
    path: &Path,
    input: impl Read + Send,
    size: Option<u64>,
    strict: bool,
) -> Result<RawTable, InputError> {
    // The start of the file, kept to say what is wrong when it is no capture the parser reads.
    let mut input = input;
    let mut head = Vec::new();
    let io_error = |source| InputError::Io {
        path: path.to_path_buf(),
        source,
    };
    input
        .by_ref()
        .take(HEAD as u64)
        .read_to_end(&mut head)
        .map_err(io_error)?;
    // A pcapng file starts with a section header, to be checked like any block; the header
    // of a pcap file sets the format when read.
    let format = match word(&head, 0, false) {
        Some(SHB_TYPE) => Format::PcapNg { big_endian: false },
        _ => Format::Unknown,
    };
    let mut capture = Capture {
        strict,
        size: size.and_then(|s| usize::try_from(s).ok()),
        format,
        ..Capture::default()
    };
    let mut reader = match create_reader(BUFFER_START, (&head[..]).chain(input)) {
        Ok(reader) => reader,
        Err(e) => {
            return Err(InputError::Format {
                path: path.to_path_buf(),
                message: capture.start_error(&e, &head),
            });
        }
    };
    let mut capacity = BUFFER_START;
    loop {
        let offset = reader.consumed();
        let framed = match capture.check(reader.data(), offset) {
            Ok(framed) => framed,
            Err(problem) => {
                capture.stop(problem, path)?;
                break;
            }
        };
        let problem = match reader.next() {
            Ok((size, block)) => {
                let result = capture.block(block, offset);
                reader.consume(size);
                match result {
                    Ok(()) => continue,
                    Err(problem) => problem,
                }
            }
            Err(e) => {
                let halt = Halt::of(&e);
                let data = reader.data();
                // The parser wants more than the record's own length: its contents are bad.
                let overrun = framed.is_some_and(|len| len <= data.len());
                match halt {
                    Halt::End => break,
                    Halt::Short { .. } | Halt::CutShort if overrun => capture.overrun(data, offset),
                    Halt::CutShort => capture.cut_short(data, offset),
                    Halt::Unparsable => capture.unparsable(data, offset),
                    Halt::ReadError => capture.trouble(data, offset, "the file cannot be read"),
                    Halt::Short { grow } => match refill(reader.as_mut(), &mut capacity, grow) {
                        None => continue,
                        Some(why) => capture.trouble(reader.data(), offset, &why),
                    },
                }
            }
        };
        capture.stop(problem, path)?;
        break;
    }
    Ok(capture.finish(reader.consumed()))
}

/// Why the parser returned no block.
#[derive(Clone, Copy, Debug)]
enum Halt {
    /// The end of the file, between blocks.
    End,
    /// The block is not all in the buffer yet; `grow` if the buffer is too small for it.
    Short {
        grow: bool,
    },
    /// The file ends in the middle of the block.
    CutShort,
    ReadError,
    Unparsable,
}

impl Halt {
    fn of(e: &PcapError<&[u8]>) -> Halt {
        match e {
            PcapError::Eof => Halt::End,
            PcapError::Incomplete(_) => Halt::Short { grow: false },
            PcapError::BufferTooSmall => Halt::Short { grow: true },
            PcapError::UnexpectedEof => Halt::CutShort,
            PcapError::ReadError => Halt::ReadError,
            _ => Halt::Unparsable,
        }
    }
}

/// Reads more of the input into the buffer, first doubling the buffer if it is too small for
/// the next block.  Returns why reading must stop, if it must.
fn refill(reader: &mut dyn PcapReaderIterator, capacity: &mut usize, grow: bool) -> Option<String> {
    let before = reader.data().len();
    if grow || before >= *capacity {
        if *capacity >= BUFFER_MAX {
            return Some(format!(
                "it is larger than this reader's buffer ({BUFFER_MAX} bytes)"
            ));
        }
        *capacity *= 2;
        reader.grow(*capacity);
    }
    if reader.refill().is_err() {
        return Some("the file cannot be read".into());
    }
    let stalled = reader.data().len() == before && !reader.reader_exhausted();
    stalled.then(|| "the parser cannot finish it".into())
}

/// The read buffer starts at this size and doubles, up to [`BUFFER_MAX`], for larger blocks.
const BUFFER_START: usize = 1 << 20;
const BUFFER_MAX: usize = 1 << 28;

/// How much of the start of a file is kept for [`Capture::start_error`].
const HEAD: usize = 1 << 16;

/// The magic numbers of pcap files, as little-endian words.
const PCAP_MAGICS: [u32; 5] = [
    0xa1b2_c3d4,
    0xa1b2_3c4d,
    0xa1b2_cd34,
    0xd4c3_b2a1,
    0x4d3c_b2a1,
];

/// The largest captured length Wireshark accepts in a pcap record of a link type: 262144
/// bytes, more for D-Bus, USBPcap and EBHSCR.
fn max_captured(linktype: i32) -> u32 {
    match linktype {
        231 | 249 => 128 << 20,
        279 => 32 << 20,
        _ => 262_144,
    }
}

/// The largest pcapng block Wireshark accepts (room for the largest packet and its options).
const MAX_BLOCK: u32 = 32 + (128 << 20) + 131_072;

/// Timestamps of records found after a damaged one must be this close (in seconds) to those
/// of the packets around the damage for the records to count as plausible.
const PLAUSIBLE_SECONDS: u32 = 7 * 24 * 3600;

const SHB_TYPE: u32 = 0x0a0d_0d0a;
const BYTE_ORDER_MAGIC: u32 = 0x1a2b_3c4d;
const IDB_TYPE: u32 = 1;
const SPB_TYPE: u32 = 3;
const EPB_TYPE: u32 = 6;

/// The name of a pcapng block type defined by the specification, if it is one.
fn block_name(kind: u32) -> Option<&'static str> {
    Some(match kind {
        SHB_TYPE => "section header",
        IDB_TYPE => "interface description",
        2 => "obsolete packet block",
        SPB_TYPE => "simple packet",
        4 => "name resolution",
        5 => "interface statistics",
        EPB_TYPE => "enhanced packet",
        9 => "systemd journal export",
        0xa => "decryption secrets",
        0xbad | 0x4000_0bad => "custom",
        0x8000_0001 => "process information",
        _ => return None,
    })
}

/// The smallest valid length of a pcapng block of a type.
fn min_block_len(kind: u32) -> u32 {
    match kind {
        SHB_TYPE => 28,
        IDB_TYPE => 20,
        SPB_TYPE => 16,
        EPB_TYPE => 32,
        _ => 12,
    }
}

/// The 32-bit word at `at` in `data`, if it is there.
fn word(data: &[u8], at: usize, big_endian: bool) -> Option<u32> {
    let bytes: [u8; 4] = data.get(at..at.checked_add(4)?)?.try_into().ok()?;
    Some(if big_endian {
        u32::from_be_bytes(bytes)
    } else {
        u32::from_le_bytes(bytes)
    })
}

/// The type, length and byte order of the pcapng block at the start of `data`, in a section
/// of byte order `big_endian` (a section header sets its own); `Err` with the byte-order
/// magic of a section header that has none of the two.
fn ng_header(data: &[u8], big_endian: bool) -> Option<Result<(u32, u32, bool), u32>> {
    let big_endian = if word(data, 0, false)? == SHB_TYPE {
        match word(data, 8, false)? {
            BYTE_ORDER_MAGIC => false,
            bom if bom.swap_bytes() == BYTE_ORDER_MAGIC => true,
            bom => return Some(Err(bom)),
        }
    } else {
        big_endian
    };
    let kind = word(data, 0, big_endian)?;
    let len = word(data, 4, big_endian)?;
    Some(Ok((kind, len, big_endian)))
}

/// `items` joined as an English list.
fn list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

fn plural(n: u64, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

/// A link type, shown with its usual name when it has one.
#[derive(Clone, Copy, Debug)]
struct LinkType(i32);

impl fmt::Display for LinkType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "link type {}", self.0)?;
        match linktype_name(self.0) {
            Some(name) => write!(f, " ({name})"),
            None => Ok(()),
        }
    }
}

/// The usual names of link types (from tcpdump.org's list), for messages.
fn linktype_name(linktype: i32) -> Option<&'static str> {
    Some(match linktype {
        0 => "BSD loopback",
        1 => "Ethernet",
        3 => "AX.25",
        6 => "IEEE 802.5 Token Ring",
        7 => "ARCNET",
        8 => "SLIP",
        9 => "PPP",
        10 => "FDDI",
        12 | 14 | 101 => "raw IP",
        50 => "PPP in HDLC-like framing",
        51 => "PPPoE",
        100 => "ATM RFC 1483",
        104 => "Cisco HDLC",
        105 => "IEEE 802.11",
        107 => "Frame Relay",
        108 => "OpenBSD loopback",
        113 => "Linux cooked v1",
        114 => "LocalTalk",
        117 => "OpenBSD pflog",
        119 => "IEEE 802.11 with Prism header",
        122 => "IP over Fibre Channel",
        123 => "SunATM",
        127 => "IEEE 802.11 with radiotap header",
        129 => "Linux ARCNET",
        138 => "IP over IEEE 1394",
        139 => "MTP2 with pseudo-header",
        140 => "MTP2",
        141 => "MTP3",
        142 => "SCCP",
        143 => "DOCSIS",
        144 => "Linux IrDA",
        147..=162 => "user-defined",
        163 => "IEEE 802.11 with AVS header",
        165 => "BACnet MS/TP",
        166 => "PPP with direction",
        169 => "GPRS LLC",
        177 => "Linux LAPD",
        187 => "Bluetooth HCI H4",
        189 => "Linux USB",
        192 => "PPI",
        195 => "IEEE 802.15.4 with FCS",
        197 => "ERF",
        201 => "Bluetooth HCI H4 with pseudo-header",
        203 => "LAPD",
        204 => "PPP with direction",
        209 => "IPMB",
        215 => "IEEE 802.15.4 non-ASK PHY",
        220 => "Linux USB memory-mapped",
        224 | 225 => "Fibre Channel FC-2",
        226 => "Solaris ipnet",
        227 => "SocketCAN",
        228 => "raw IPv4",
        229 => "raw IPv6",
        230 => "IEEE 802.15.4 without FCS",
        231 => "D-Bus",
        235 => "DVB-CI",
        239 => "Linux NFLOG",
        240 | 241 => "netANALYZER",
        242 => "IP over InfiniBand",
        243 => "MPEG-2 transport stream",
        247 => "InfiniBand",
        248 => "SCTP",
        249 => "USBPcap",
        251 => "Bluetooth LE link layer",
        252 => "Wireshark upper PDU",
        253 => "Linux netlink",
        254 => "Linux Bluetooth monitor",
        256 => "Bluetooth LE link layer with pseudo-header",
        258 => "Apple PKTAP",
        259 => "EPON",
        263 => "WattStopper DLM",
        264 => "ISO 14443",
        266 => "Darwin USB",
        270 => "LoRaTap",
        271 => "vsock",
        272 => "Nordic BLE",
        274 => "Ethernet mPackets",
        276 => "Linux cooked v2",
        279 => "EBHSCR",
        281..=285 => "DSA-tagged Ethernet",
        288 | 293..=295 => "USB 2.0",
        290 => "Event Tracing for Windows",
        _ => return None,
    })
}

/// What this reader decodes beyond the frame fields, for messages.
const SUPPORTED: &str = "Ethernet (1), raw IP (101, 12, 14, 228, 229) and Linux cooked \
                         captures (113, 276)";

/// The state of a capture being read: its interfaces, its rows so far and the packet decoder.
#[derive(Debug, Default)]
struct Capture {
    strict: bool,
    /// The size of the file, if known.
    size: Option<usize>,
    format: Format,
    /// pcapng blocks read so far, from the first section header on.
    blocks: u64,
    interfaces: Vec<Interface>,
    decoder: Decoder,
    rows: Vec<Vec<Cell>>,
    origins: Vec<Origin>,
    /// Link types without decoder, in order of appearance: first frame, number of packets.
    unsupported: Vec<(i32, u64, u64)>,
    /// pcapng block types skipped as unknown: first block number, its offset, count.
    unknown: Vec<(u32, u64, usize, u64)>,
    /// pcap: the timestamp seconds of the last packet, and the packet if it claims more bytes
    /// captured than it had (frame, captured, original length): its length may be the damage.
    last_seconds: Option<u32>,
    oversized: Option<(u64, u32, u32)>,
    /// The warning about the damage that ended the reading.
    stopped: Option<String>,
}

/// The file format, as far as the framing of records goes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Format {
    /// Before the file header.
    #[default]
    Unknown,
    /// pcap: the byte order and the size of a record header.
    Pcap { big_endian: bool, header: usize },
    /// pcapng: the byte order of the current section.
    PcapNg { big_endian: bool },
}

/// Where a record or block starts, for messages: its pcapng block number, its frame number
/// if it holds a packet, its byte offset.  Under strict reading the frame number is left to
/// the error's origin.
#[derive(Clone, Copy, Debug)]
struct Site {
    offset: usize,
    block: Option<u64>,
    frame: Option<u64>,
    strict: bool,
}

impl fmt::Display for Site {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.block, self.frame, self.strict) {
            (Some(block), Some(frame), false) => write!(f, "block {block} (frame {frame})"),
            (Some(block), _, _) => write!(f, "block {block}"),
            (None, Some(frame), false) => write!(f, "frame {frame}"),
            (None, Some(_), true) => f.write_str("the packet record"),
            (None, None, _) => f.write_str("the data"),
        }?;
        write!(f, " at byte offset {}", self.offset)
    }
}

/// Why reading stops early (or, strict, a packet of an unsupported link type): the message,
/// and the frame it concerns, if any.
#[derive(Debug)]
struct Problem {
    frame: Option<u64>,
    message: String,
}

impl Problem {
    fn at(site: Site, message: String) -> Problem {
        Problem {
            frame: site.frame,
            message,
        }
    }
}

/// What a packet needs from the interface it was captured on.
#[derive(Clone, Copy, Debug)]
struct Interface {
    linktype: i32,
    /// Timestamp units per second.
    units: u64,
    /// Seconds added to every timestamp (pcapng `if_tsoffset`).
    offset: i64,
    snaplen: u32,
}

impl Interface {
    fn legacy(header: &PcapHeader) -> Interface {
        let units = if header.is_nanosecond_precision() {
            NANOS
        } else {
            1_000_000
        };
        // The upper bits of the link type field of a pcap header carry the FCS length.
        let linktype = header.network.0 & 0x03ff_ffff;
        Interface {
            linktype,
            units,
            offset: 0,
            snaplen: header.snaplen,
        }
    }
}

const NANOS: u64 = 1_000_000_000;

/// One captured packet, before decoding.
#[derive(Clone, Copy, Debug)]
struct Frame<'a> {
    linktype: i32,
    /// Seconds and nanoseconds since the epoch; pcapng simple packets have none.
    time: Option<(i64, u32)>,
    len: u32,
    data: &'a [u8],
}

impl Capture {
    fn block(&mut self, block: PcapBlockOwned<'_>, offset: usize) -> Result<(), Problem> {
        match block {
            PcapBlockOwned::LegacyHeader(header) => {
                // As pcap-parser reads them: the modified format is always little-endian.
                let modified = header.is_modified_format();
                self.format = Format::Pcap {
                    big_endian: header.is_bigendian() && !modified,
                    header: if modified { 24 } else { 16 },
                };
                self.interfaces = vec![Interface::legacy(&header)];
            }
            PcapBlockOwned::Legacy(b) => {
                let iface = self.interface(0, offset)?;
                let time = timestamp(
                    u64::from(b.ts_sec) * iface.units + u64::from(b.ts_usec),
                    iface,
                );
                self.packet(Frame {
                    linktype: iface.linktype,
                    time,
                    len: b.origlen,
                    data: b.data,
                })?;
                self.last_seconds = Some(b.ts_sec);
                let frame = self.rows.len() as u64;
                self.oversized = (b.caplen > b.origlen).then_some((frame, b.caplen, b.origlen));
            }
            PcapBlockOwned::NG(block) => {
                self.blocks += 1;
                self.ng_block(&block, offset)?;
            }
        }
        Ok(())
    }

    fn ng_block(&mut self, block: &Block<'_>, offset: usize) -> Result<(), Problem> {
        match block {
            Block::SectionHeader(shb) => {
                self.interfaces.clear();
                self.format = Format::PcapNg {
                    big_endian: shb.big_endian(),
                };
            }
            Block::InterfaceDescription(idb) => self.interfaces.push(Interface {
                linktype: idb.linktype.0,
                units: units_per_second(idb.if_tsresol).unwrap_or(1_000_000),
                offset: idb.ts_offset(),
                snaplen: idb.snaplen,
            }),
            Block::EnhancedPacket(epb) => {
                let iface = self.interface(epb.if_id, offset)?;
                let ticks = (u64::from(epb.ts_high) << 32) | u64::from(epb.ts_low);
                let time = timestamp(ticks, iface);
                let (len, data) = (epb.orig_len(), epb.packet_data());
                self.packet(Frame {
                    linktype: iface.linktype,
                    time,
                    len,
                    data,
                })?;
            }
            Block::SimplePacket(spb) => {
                let iface = self.interface(0, offset)?;
                let mut data = spb.packet_data();
                if iface.snaplen > 0 {
                    data = &data[..data.len().min(iface.snaplen as usize)];
                }
                self.packet(Frame {
                    linktype: iface.linktype,
                    time: None,
                    len: spb.origlen,
                    data,
                })?;
            }
            Block::Unknown(ub) => {
                // pcap-parser reads the type little-endian.
                let kind = match self.format {
                    Format::PcapNg { big_endian: true } => ub.block_type.swap_bytes(),
                    _ => ub.block_type,
                };
                match self.unknown.iter_mut().find(|u| u.0 == kind) {
                    Some(u) => u.3 += 1,
                    None => self.unknown.push((kind, self.blocks, offset, 1)),
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// The interface a packet refers to; `offset` is where its block starts.
    fn interface(&self, id: u32, offset: usize) -> Result<Interface, Problem> {
        let found = usize::try_from(id)
            .ok()
            .and_then(|i| self.interfaces.get(i));
        found.copied().ok_or_else(|| {
            let frame = self.rows.len() as u64 + 1;
            let site = Site {
                offset,
                // The block was counted when read.
                block: (self.blocks > 0).then_some(self.blocks),
                frame: Some(frame),
                strict: self.strict,
            };
            Problem::at(
                site,
                format!(
                    "{site} is a packet on interface {id}, which its section does not \
                     describe: the capture is damaged there; {}",
                    self.rest(offset)
                ),
            )
        })
    }

    fn packet(&mut self, frame: Frame<'_>) -> Result<(), Problem> {
        let number = self.rows.len() as u64 + 1;
        let (row, supported) = self.decoder.decode(number, &frame);
        if !supported {
            if self.strict {
                return Err(Problem {
                    frame: Some(number),
                    message: format!(
                        "{} is not supported (supported: {SUPPORTED})",
                        LinkType(frame.linktype)
                    ),
                });
            }
            match self.unsupported.iter_mut().find(|u| u.0 == frame.linktype) {
                Some(u) => u.2 += 1,
                None => self.unsupported.push((frame.linktype, number, 1)),
            }
        }
        self.rows.push(row);
        self.origins.push(Origin::Frame(number));
        Ok(())
    }

    /// Why the parser does not start on a file beginning with `head` (the whole file if
    /// shorter than [`HEAD`]): no capture, or damage in the first section header of a pcapng
    /// file or in the file header of a pcap file.
    fn start_error(&self, e: &PcapError<&[u8]>, head: &[u8]) -> String {
        if head.is_empty() {
            return "empty file, not a packet capture".into();
        }
        if matches!(e, PcapError::ReadError) {
            return "cannot read the file".into();
        }
        let whole = head.len() < HEAD;
        if matches!(ng_header(head, false), Some(Ok((SHB_TYPE, ..)))) {
            return match self.check(head, 0) {
                Err(problem) => problem.message,
                Ok(Some(len)) if len > head.len() && whole => self.cut_short(head, 0).message,
                Ok(_) => self.unparsable(head, 0).message,
            };
        }
        if word(head, 0, false).is_some_and(|magic| PCAP_MAGICS.contains(&magic)) && whole {
            return format!(
                "the file ends in the middle of the pcap file header: only {} of its 24 bytes \
                 are there (the file is cut short)",
                head.len()
            );
        }
        "not a pcap or pcapng packet capture (unknown magic number or header)".into()
    }

    /// Where the record or block at the start of `data`, at `offset`, is.
    fn site(&self, data: &[u8], offset: usize) -> Site {
        let frame = self.rows.len() as u64 + 1;
        let (block, frame) = match self.format {
            Format::Unknown => (None, None),
            Format::Pcap { .. } => (None, Some(frame)),
            Format::PcapNg { big_endian } => {
                // A section header reads the same in either byte order, and holds no packet.
                let packet = matches!(word(data, 0, big_endian), Some(EPB_TYPE | SPB_TYPE));
                (Some(self.blocks + 1), packet.then_some(frame))
            }
        };
        Site {
            offset,
            block,
            frame,
            strict: self.strict,
        }
    }

    /// The bytes of the file from `offset` on, if the size of the file is known.
    fn left(&self, offset: usize) -> Option<usize> {
        self.size.map(|size| size.saturating_sub(offset))
    }

    /// What is lost when reading stops at `offset`.
    fn rest(&self, offset: usize) -> String {
        match self.left(offset) {
            Some(left) => format!("the remaining {left} bytes are not read"),
            None => "the rest of the file is not read".into(),
        }
    }

    /// Checks the length fields of the record or block at the start of `data` (at `offset`)
    /// before the parser reads it, which would take a corrupt length for a file cut short or
    /// read garbage as packets.  Returns the length of the record or block, when known.
    fn check(&self, data: &[u8], offset: usize) -> Result<Option<usize>, Problem> {
        match self.format {
            Format::Unknown => Ok(None),
            Format::Pcap { big_endian, header } => {
                self.check_record(data, offset, big_endian, header)
            }
            Format::PcapNg { big_endian } => self.check_block(data, offset, big_endian),
        }
    }

    fn check_record(
        &self,
        data: &[u8],
        offset: usize,
        big_endian: bool,
        header: usize,
    ) -> Result<Option<usize>, Problem> {
        let (Some(captured), Some(iface)) = (word(data, 8, big_endian), self.interfaces.first())
        else {
            return Ok(None);
        };
        let max = max_captured(iface.linktype);
        let len = header + captured as usize;
        let beyond_buffer = len > BUFFER_MAX;
        if captured <= max.max(iface.snaplen) && !beyond_buffer {
            return Ok(Some(len));
        }
        let mut limits = Vec::new();
        if iface.snaplen > 0 && captured > iface.snaplen {
            limits.push(format!("the snapshot length ({} bytes)", iface.snaplen));
        }
        if captured > max && max != iface.snaplen {
            limits.push(format!(
                "the pcap maximum of {max} bytes for {}",
                LinkType(iface.linktype)
            ));
        }
        if limits.is_empty() {
            limits.push(format!("this reader's buffer ({BUFFER_MAX} bytes)"));
        }
        if let Some(left) = self
            .left(offset + header)
            .filter(|&l| captured as usize > l)
        {
            limits.push(format!("the {left} bytes left in the file"));
        }
        let site = self.site(data, offset);
        let message = format!(
            "{site} claims a captured length of {captured} bytes, more than {}: the capture is \
             damaged there{}; {}",
            list(&limits),
            self.oversized_hint(site),
            self.rest(offset)
        );
        Err(Problem::at(site, message))
    }

    /// A note that the packet before `site` claims more bytes captured than it had, which
    /// makes its length the likely damage.
    fn oversized_hint(&self, site: Site) -> String {
        match self.oversized {
            Some((frame, captured, len)) if site.frame == Some(frame + 1) => format!(
                " (frame {frame} before it claims {captured} bytes captured of a {len}-byte \
                 packet: its length is probably what is wrong)"
            ),
            _ => String::new(),
        }
    }

    fn check_block(
        &self,
        data: &[u8],
        offset: usize,
        section_big_endian: bool,
    ) -> Result<Option<usize>, Problem> {
        let site = self.site(data, offset);
        let damaged = |what: String| {
            let message = format!(
                "{site} {what}: the capture is damaged there; {}",
                self.rest(offset)
            );
            Err(Problem::at(site, message))
        };
        let (kind, len, big_endian) = match ng_header(data, section_big_endian) {
            None => return Ok(None),
            Some(Ok(header)) => header,
            Some(Err(bom)) => {
                return damaged(format!(
                    "is a section header with a wrong byte-order magic (0x{bom:08x})"
                ));
            }
        };
        let name = block_name(kind).map_or_else(String::new, |n| format!(" ({n})"));
        let minimum = min_block_len(kind);
        if len % 4 != 0 || len < minimum {
            let why = if len % 4 != 0 {
                "not a multiple of 4".to_owned()
            } else {
                format!("less than the {minimum} bytes a block of its type{name} needs")
            };
            return damaged(format!("claims a block length of {len} bytes, {why}"));
        }
        let left = self.left(offset).filter(|&l| len as usize > l);
        let and_left = left.map_or_else(String::new, |l| {
            format!(" and the {l} bytes left in the file")
        });
        if len > MAX_BLOCK {
            return damaged(format!(
                "claims a block length of {len} bytes, more than the pcapng maximum \
                 ({MAX_BLOCK} bytes){and_left}"
            ));
        }
        if let Some(end) = word(data, len as usize - 4, big_endian)
            && end != len
        {
            return damaged(format!(
                "claims a block length of {len} bytes, but the copy of the length at its end \
                 reads {end}"
            ));
        }
        if kind == EPB_TYPE
            && let Some(captured) = word(data, 20, big_endian)
            && captured > len - 32
        {
            return damaged(format!(
                "claims a captured length of {captured} bytes, more than its block of {len} \
                 bytes holds ({} bytes)",
                len - 32
            ));
        }
        Ok(Some(len as usize))
    }

    /// The record or block at the start of `data` (at `offset`) is all there, but the parser
    /// wants more: its contents are inconsistent with its length.
    fn overrun(&self, data: &[u8], offset: usize) -> Problem {
        let site = self.site(data, offset);
        let message = format!(
            "{site} cannot be parsed: its contents run past its end: the capture is damaged \
             there; {}",
            self.rest(offset)
        );
        Problem::at(site, message)
    }

    /// The file ends in the record or block at the start of `data` (at `offset`); `data` is
    /// all that is left of the file.  Tells a file cut short from a length field gone wrong:
    /// the length is wrong when plausible records or blocks follow it.
    fn cut_short(&self, data: &[u8], offset: usize) -> Problem {
        let site = self.site(data, offset);
        let (what, claimed, left, next) = match self.format {
            Format::Pcap { big_endian, header } => {
                let Some(captured) = word(data, 8, big_endian).filter(|_| data.len() >= header)
                else {
                    return self.cut_in_header(site, data.len(), header);
                };
                let left = data.len() - header;
                let next = self.next_record(data, big_endian, header);
                ("a captured length", captured, left, next)
            }
            Format::PcapNg { big_endian } => {
                let Some(Ok((_, len, _))) = ng_header(data, big_endian) else {
                    return self.cut_in_header(site, data.len(), 8);
                };
                let next = next_block(data, big_endian);
                ("a block length", len, data.len(), next)
            }
            Format::Unknown => return self.cut_in_header(site, data.len(), 0),
        };
        let message = match next {
            Some(at) => format!(
                "{site} claims {what} of {claimed} bytes, more than the {left} bytes left in \
                 the file, yet a plausible {} follows at byte offset {}: the capture is \
                 damaged there{}; the remaining {} bytes are not read",
                if matches!(self.format, Format::Pcap { .. }) {
                    "packet record"
                } else {
                    "block"
                },
                offset + at,
                self.oversized_hint(site),
                data.len()
            ),
            None => format!(
                "the file ends in the middle of {site}, which claims {what} of {claimed} \
                 bytes: only {left} bytes are left (the file is cut short)"
            ),
        };
        Problem::at(site, message)
    }

    fn cut_in_header(&self, site: Site, left: usize, header: usize) -> Problem {
        let message = if header > 0 {
            format!(
                "the file ends in the middle of the header of {site}: only {left} of its \
                 {header} bytes are there (the file is cut short)"
            )
        } else {
            format!("the file ends in the middle of {site} (the file is cut short)")
        };
        Problem::at(site, message)
    }

    /// The pcap record at the start of `data` runs past the end of the file: the offset in
    /// `data` of the first record header after its own that starts plausible records (two
    /// whole ones, or one that ends the file), if any.  Plausible: a valid fraction of a
    /// second, lengths within limits, a timestamp near the packets around the damage.
    fn next_record(&self, data: &[u8], big_endian: bool, header: usize) -> Option<usize> {
        let iface = self.interfaces.first()?;
        let limit = max_captured(iface.linktype).max(iface.snaplen);
        let near: Vec<u32> = self
            .last_seconds
            .into_iter()
            .chain(word(data, 0, big_endian))
            .collect();
        let end_of = |at: usize| -> Option<usize> {
            let seconds = word(data, at, big_endian)?;
            let fraction = word(data, at + 4, big_endian)?;
            let captured = word(data, at + 8, big_endian)?;
            let len = word(data, at + 12, big_endian)?;
            let plausible = u64::from(fraction) < iface.units
                && captured <= len
                && captured <= limit
                && near
                    .iter()
                    .any(|s| s.abs_diff(seconds) <= PLAUSIBLE_SECONDS);
            let end = at + header + captured as usize;
            (plausible && end <= data.len()).then_some(end)
        };
        (header..data.len()).find(|&start| {
            let (mut at, mut whole) = (start, 0);
            while let Some(end) = end_of(at) {
                whole += 1;
                if end == data.len() || whole == 2 {
                    return true;
                }
                at = end;
            }
            false
        })
    }

    /// The warning, or under strict reading the error, for damage that ends the reading.
    fn stop(&mut self, problem: Problem, path: &Path) -> Result<(), InputError> {
        if self.strict {
            let path = path.to_path_buf();
            let message = problem.message;
            return Err(match problem.frame {
                Some(n) => InputError::Record {
                    path,
                    origin: Origin::Frame(n),
                    message,
                },
                None => InputError::Format { path, message },
            });
        }
        let kept = plural(self.rows.len() as u64, "packet", "packets");
        self.stopped = Some(format!("{}; kept the {kept} before it", problem.message));
        Ok(())
    }

    /// Reading stops at the record or block at the start of `data` (at `offset`) for a
    /// reason of the reader's, `why`.
    fn trouble(&self, data: &[u8], offset: usize, why: &str) -> Problem {
        let site = self.site(data, offset);
        Problem::at(
            site,
            format!("reading stops at {site}: {why}; {}", self.rest(offset)),
        )
    }

    /// The parser rejects the block at the start of `data` (at `offset`).
    fn unparsable(&self, data: &[u8], offset: usize) -> Problem {
        let site = self.site(data, offset);
        let header = match self.format {
            Format::PcapNg { big_endian } => ng_header(data, big_endian).and_then(Result::ok),
            _ => None,
        };
        // `check` has found the lengths consistent: the trouble is inside.
        let what = match header {
            Some((kind, len, _)) => match block_name(kind) {
                Some(name) => format!("({name}, {len} bytes) cannot be parsed"),
                None => format!("(type 0x{kind:08x}, {len} bytes) cannot be parsed"),
            },
            None => "cannot be parsed".into(),
        };
        let message = format!(
            "{site} {what}: the capture is damaged there; {}",
            self.rest(offset)
        );
        Problem::at(site, message)
    }

    fn finish(self, bytes: usize) -> RawTable {
        let mut warnings = Vec::new();
        for &(linktype, first, count) in &self.unsupported {
            warnings.push(format!(
                "{} is not supported: {} only the frame.* fields (the first is frame {first})",
                LinkType(linktype),
                plural(count, "packet has", "packets have"),
            ));
        }
        for &(kind, block, offset, count) in &self.unknown {
            let what = match kind {
                2 => format!(
                    "{} (type 2, packets not read)",
                    plural(count, "obsolete packet block", "obsolete packet blocks")
                ),
                _ => format!(
                    "{} of unknown type 0x{kind:08x}",
                    plural(count, "block", "blocks")
                ),
            };
            let first = if count == 1 { "" } else { "the first is " };
            warnings.push(format!(
                "{what} skipped ({first}block {block} at byte offset {offset})"
            ));
        }
        warnings.extend(self.stopped);
        let report = ReadReport {
            records: self.rows.len() as u64,
            skipped: Vec::new(),
            warnings,
            bytes: bytes as u64,
        };
        let columns = COLUMNS.iter().map(|c| (*c).to_owned()).collect();
        RawTable {
            columns,
            rows: self.rows,
            origins: self.origins,
            report,
        }
    }
}

/// The pcapng block at the start of `data` runs past the end of the file: the offset in
/// `data` of the first whole block of a known type after its header, if any (blocks start
/// at multiples of 4, and repeat their length at their end).
fn next_block(data: &[u8], big_endian: bool) -> Option<usize> {
    (8..data.len()).step_by(4).find(|&at| {
        let rest = &data[at..];
        let Some(Ok((kind, len, big_endian))) = ng_header(rest, big_endian) else {
            return false;
        };
        block_name(kind).is_some()
            && len % 4 == 0
            && len >= min_block_len(kind)
            && word(rest, len as usize - 4, big_endian) == Some(len)
    })
}

/// The timestamp units per second of a pcapng `if_tsresol`: a power of ten, or of two when
/// the top bit is set.  (pcap-parser 0.17's `ts_resolution` rejects every power of two.)
fn units_per_second(tsresol: u8) -> Option<u64> {
    let exponent = u32::from(tsresol & 0x7f);
    if tsresol & 0x80 == 0 {
        10u64.checked_pow(exponent)
    } else {
        1u64.checked_shl(exponent)
    }
}

/// Splits a timestamp in interface units into seconds and nanoseconds (truncating, as tshark).
fn timestamp(ticks: u64, iface: Interface) -> Option<(i64, u32)> {
    let secs = i64::try_from(ticks / iface.units)
        .ok()?
        .checked_add(iface.offset)?;
    let nanos = u128::from(ticks % iface.units) * u128::from(NANOS) / u128::from(iface.units);
    Some((secs, u32::try_from(nanos).ok()?))
}

/// The epoch time as the real number tshark's nine-decimal text denotes.
fn epoch(secs: i64, nanos: u32) -> f64 {
    if secs < 0 {
        return secs as f64 + f64::from(nanos) / NANOS as f64;
    }
    format!("{secs}.{nanos:09}").parse().unwrap_or(secs as f64)
}

/// The cells of one row, filled layer by layer; the first value given to a cell stays.
#[derive(Debug)]
struct Fields(Vec<Cell>);

impl Fields {
    fn new() -> Fields {
        Fields(vec![Cell::Missing; COLUMNS.len()])
    }

    fn set(&mut self, col: Col, cell: Cell) {
        let slot = &mut self.0[col as usize];
        if slot.is_missing() {
            *slot = cell;
        }
    }

    fn int(&mut self, col: Col, value: impl Into<i64>) {
        self.set(col, Cell::Int(value.into()));
    }

    fn count(&mut self, col: Col, value: usize) {
        self.int(col, i64::try_from(value).unwrap_or(i64::MAX));
    }

    fn flag(&mut self, col: Col, value: bool) {
        self.int(col, value);
    }

    fn text<T: fmt::Display + ?Sized>(&mut self, col: Col, value: &T) {
        self.set(col, Cell::Text(value.to_string()));
    }
}

/// A header field tshark adds once the first `.0` bytes of the header are captured.
type Step<H> = (usize, fn(&H, &mut Fields));

/// Adds the fields of `steps` in order, stopping at the first whose bytes were not captured
/// (tshark stops dissecting a layer at the first field it cannot read).  Returns whether all
/// were added.
fn emit<H>(header: &H, captured: usize, fields: &mut Fields, steps: &[Step<H>]) -> bool {
    for (end, step) in steps {
        if captured < *end {
            return false;
        }
        step(header, fields);
    }
    true
}

/// The first `N` bytes of `data`, zero-filled past its end, so that etherparse can parse a
/// header whose tail was not captured; [`emit`] keeps the missing fields out of the row.
fn padded<const N: usize>(data: &[u8]) -> [u8; N] {
    let mut buffer = [0; N];
    let n = data.len().min(N);
    buffer[..n].copy_from_slice(&data[..n]);
    buffer
}

/// The bytes of a layer that were captured, and how long the layer really is.
#[derive(Clone, Copy, Debug)]
struct Segment<'a> {
    data: &'a [u8],
    reported: usize,
}

impl<'a> Segment<'a> {
    fn whole(data: &'a [u8]) -> Segment<'a> {
        Segment {
            data,
            reported: data.len(),
        }
    }

    /// The rest after the first `n` bytes.
    fn skip(self, n: usize) -> Segment<'a> {
        Segment {
            data: self.data.get(n..).unwrap_or(&[]),
            reported: self.reported.saturating_sub(n),
        }
    }

    /// The first `len` bytes, as an enclosing header's length field says.
    fn clip(self, len: usize) -> Segment<'a> {
        Segment {
            data: &self.data[..self.data.len().min(len)],
            reported: len,
        }
    }

    fn is_complete(self) -> bool {
        self.data.len() >= self.reported
    }
}

/// Where a header sits: on the wire, or quoted in an ICMP error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Quote {
    None,
    Icmp4 { redirect: bool },
    Icmp6,
}

#[derive(Clone, Copy, Debug)]
struct Ctx {
    quote: Quote,
    /// IP headers already entered (IP in IP, ICMP errors).
    depth: u8,
}

impl Ctx {
    /// A header on the wire, not inside another IP header.
    const TOP: Ctx = Ctx {
        quote: Quote::None,
        depth: 0,
    };
}

const MAX_DEPTH: u8 = 4;

/// How an IP header is entered: by link type or EtherType.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum IpEntry {
    /// Raw IP link types: IPv4 or IPv6 by the version nibble, anything else is not IP.
    Raw,
    /// EtherType IPv4 (and link type 228): IPv6 by the version nibble, else IPv4.
    V4,
    /// EtherType IPv6 (and link type 229).
    V6,
}

/// Decodes packets into rows, keeping the state that spans packets.
#[derive(Debug, Default)]
struct Decoder {
    tcp: TcpTracker,
    fragments: Fragments,
}

impl Decoder {
    /// The row of a packet, and whether its link type is supported.
    fn decode(&mut self, number: u64, frame: &Frame<'_>) -> (Vec<Cell>, bool) {
        let mut f = Fields::new();
        f.int(Col::FrameNumber, i64::try_from(number).unwrap_or(i64::MAX));
        if let Some((secs, nanos)) = frame.time {
            f.set(Col::FrameTimeEpoch, Cell::Real(epoch(secs, nanos)));
        }
        f.int(Col::FrameLen, frame.len);
        f.count(Col::FrameCapLen, frame.data.len());
        let reported = frame.data.len().max(frame.len as usize);
        let seg = Segment {
            data: frame.data,
            reported,
        };
        let supported = self.link(frame.linktype, seg, &mut f);
        (f.0, supported)
    }

    fn link(&mut self, linktype: i32, seg: Segment<'_>, f: &mut Fields) -> bool {
        let top = Ctx::TOP;
        match linktype {
            1 => self.ethernet(seg, f),
            12 | 14 | 101 => self.ip(IpEntry::Raw, seg, top, f),
            228 => self.ip(IpEntry::V4, seg, top, f),
            229 => self.ip(IpEntry::V6, seg, top, f),
            113 => self.cooked(seg, 16, [2, 14], f),
            276 => self.cooked(seg, 20, [8, 0], f),
            _ => return false,
        }
        true
    }

    fn ethernet(&mut self, seg: Segment<'_>, f: &mut Fields) {
        let Ok(eth) = Ethernet2Slice::from_slice_without_fcs(seg.data) else {
            return;
        };
        f.text(Col::EthDst, &mac(eth.destination()));
        f.text(Col::EthSrc, &mac(eth.source()));
        self.ether_type(eth.ether_type(), seg.skip(eth.header_slice().len()), f);
    }

    /// A Linux cooked header of `len` bytes, with its ARPHRD type and protocol at `at`.
    fn cooked(&mut self, seg: Segment<'_>, len: usize, at: [usize; 2], f: &mut Fields) {
        if seg.data.len() < len {
            return;
        }
        let word = |i: usize| u16::from_be_bytes([seg.data[i], seg.data[i + 1]]);
        let (hardware, protocol) = (word(at[0]), word(at[1]));
        // Protocols up to 1536 are Linux pseudo-types, and some hardware types carry other
        // numbers (FRAD, GRE, radiotap, netlink).
        if protocol > 1536 && ![770, 778, 803, 824].contains(&hardware) {
            self.ether_type(EtherType(protocol), seg.skip(len), f);
        }
    }

    fn ether_type(&mut self, mut ether_type: EtherType, mut seg: Segment<'_>, f: &mut Fields) {
        let top = Ctx::TOP;
        loop {
            match ether_type {
                EtherType::IPV4 => return self.ip(IpEntry::V4, seg, top, f),
                EtherType::IPV6 => return self.ip(IpEntry::V6, seg, top, f),
                EtherType::VLAN_TAGGED_FRAME
                | EtherType::PROVIDER_BRIDGING
                | EtherType::VLAN_DOUBLE_TAGGED_FRAME => {
                    let Ok(vlan) = SingleVlanSlice::from_slice(seg.data) else {
                        return;
                    };
                    ether_type = vlan.ether_type();
                    seg = seg.skip(vlan.header_slice().len());
                }
                _ => return,
            }
        }
    }

    /// An IP header, of the version its first nibble says where `entry` allows it.
    fn ip(&mut self, entry: IpEntry, seg: Segment<'_>, ctx: Ctx, f: &mut Fields) {
        let Some(&first) = seg.data.first() else {
            return;
        };
        // tshark's raw IP dissector shows nothing of a packet shorter than eight bytes.
        if entry == IpEntry::Raw && seg.data.len() < 8 {
            return;
        }
        let version = first >> 4;
        match (entry, version) {
            (IpEntry::Raw | IpEntry::V4, 4) => {
                f.int(Col::IpVersion, 4);
                self.ipv4(seg, ctx, f);
                f.text(Col::Protocol, "IPv4");
            }
            (_, 6) => {
                f.int(Col::IpVersion, 6);
                self.ipv6(seg, ctx, f);
                f.text(Col::Protocol, "IPv6");
            }
            (IpEntry::Raw, _) => {}
            (IpEntry::V4, _) => {
                f.int(Col::IpVersion, version);
                f.text(Col::Protocol, "IPv4");
            }
            (IpEntry::V6, _) => {
                f.int(Col::IpVersion, version);
                f.text(Col::Protocol, "IPv6");
            }
        }
    }

    fn ipv4(&mut self, seg: Segment<'_>, ctx: Ctx, f: &mut Fields) {
        let header_len = usize::from(seg.data[0] & 0x0f) * 4;
        f.count(Col::IpHdrLen, header_len);
        let raw = padded::<60>(seg.data);
        let Ok((header, _)) = Ipv4Header::from_slice(&raw) else {
            return;
        };
        // etherparse does not keep the reserved flag, which tshark's `ip.flags` includes.
        let h = V4 {
            header,
            flags: raw[6] >> 5,
        };
        let captured = seg.data.len();
        if !emit(&h, captured, f, IPV4_DSFIELD) || captured < 4 {
            return;
        }
        // A zero length comes from TCP segmentation offload: tshark uses the frame's length.
        let total = match usize::from(h.header.total_len) {
            0 => seg.reported,
            n => n,
        };
        f.count(Col::IpLen, total);
        if total < header_len || !emit(&h, captured, f, IPV4_FIELDS) || captured < header_len {
            return;
        }
        let ip = Datagram {
            proto: h.header.protocol,
            src: IpAddr::from(h.header.source),
            dst: IpAddr::from(h.header.destination),
            fragment: Some(Fragment {
                offset: usize::from(h.header.fragment_offset.byte_offset()),
                more: h.header.more_fragments,
                id: u32::from(h.header.identification),
            }),
        };
        self.ip_payload(&ip, seg.clip(total).skip(header_len), ctx, f);
    }

    fn ipv6(&mut self, seg: Segment<'_>, ctx: Ctx, f: &mut Fields) {
        let Ok((h, _)) = Ipv6Header::from_slice(&padded::<40>(seg.data)) else {
            return;
        };
        let captured = seg.data.len();
        // tshark dissects nothing after a zero payload length (a jumbogram without its option).
        if !emit(&h, captured, f, IPV6_FIELDS) || h.payload_length == 0 {
            return;
        }
        let payload = seg.skip(40).clip(usize::from(h.payload_length));
        let Some((consumed, proto, fragment)) = ipv6_extensions(h.next_header, payload.data) else {
            return;
        };
        let ip = Datagram {
            proto,
            src: IpAddr::from(h.source),
            dst: IpAddr::from(h.destination),
            fragment,
        };
        self.ip_payload(&ip, payload.skip(consumed), ctx, f);
    }

    /// The payload of an IP header: reassembled when it is a fragment that tshark reassembles.
    fn ip_payload(&mut self, ip: &Datagram, seg: Segment<'_>, ctx: Ctx, f: &mut Fields) {
        let Some(fragment) = ip.fragment.filter(|fr| fr.more || fr.offset > 0) else {
            return self.transport(ip, seg, ctx, f);
        };
        if ctx.quote == Quote::None && seg.is_complete() && seg.reported > 0 {
            if let Some(whole) = self.fragments.add(ip, fragment, seg.data) {
                self.transport(ip, Segment::whole(&whole), ctx, f);
            }
        } else if fragment.offset == 0 {
            self.transport(ip, seg, ctx, f);
        }
    }

    fn transport(&mut self, ip: &Datagram, seg: Segment<'_>, ctx: Ctx, f: &mut Fields) {
        let deeper = Ctx {
            depth: ctx.depth + 1,
            ..ctx
        };
        match ip.proto {
            IpNumber::TCP => {
                f.text(Col::Protocol, "TCP");
                let seg = match ctx.quote {
                    // tshark shows no more of a segment quoted in a redirect than its first
                    // eight bytes.
                    Quote::Icmp4 { redirect: true } => seg.clip(seg.data.len().min(8)),
                    _ => seg,
                };
                self.tcp.segment(seg, (ip.src, ip.dst), ctx.quote, f);
            }
            IpNumber::UDP => {
                f.text(Col::Protocol, "UDP");
                udp(seg.data, f);
            }
            IpNumber::ICMP => {
                f.text(Col::Protocol, "ICMP");
                self.icmp(seg, deeper, f);
            }
            IpNumber::IPV6_ICMP => {
                f.text(Col::Protocol, "ICMPv6");
                self.icmpv6(seg, deeper, f);
            }
            IpNumber::IPV4 if deeper.depth < MAX_DEPTH => self.ip(IpEntry::V4, seg, deeper, f),
            IpNumber::IPV6 if deeper.depth < MAX_DEPTH => self.ip(IpEntry::V6, seg, deeper, f),
            _ => {}
        }
    }

    fn icmp(&mut self, seg: Segment<'_>, ctx: Ctx, f: &mut Fields) {
        // The type and code are the first two bytes; etherparse's ICMP parsers insist on
        // whole messages, which header-only captures do not have.
        let [kind, code, ..] = padded::<2>(seg.data);
        if !emit(&(kind, code), seg.data.len(), f, ICMP_FIELDS) {
            return;
        }
        // Unreachable, source quench, redirect, time exceeded, parameter problem.
        if [3, 4, 5, 11, 12].contains(&kind) && ctx.quote == Quote::None && ctx.depth < MAX_DEPTH {
            let quote = Quote::Icmp4 {
                redirect: kind == 5,
            };
            let inner = Segment::whole(seg.data.get(8..).unwrap_or(&[]));
            self.ip(IpEntry::V4, inner, Ctx { quote, ..ctx }, f);
        }
    }

    fn icmpv6(&mut self, seg: Segment<'_>, ctx: Ctx, f: &mut Fields) {
        let [kind] = padded::<1>(seg.data);
        if (1..=4).contains(&kind) && ctx.quote == Quote::None && ctx.depth < MAX_DEPTH {
            let inner = Segment::whole(seg.data.get(8..).unwrap_or(&[]));
            self.ip(
                IpEntry::V6,
                inner,
                Ctx {
                    quote: Quote::Icmp6,
                    ..ctx
                },
                f,
            );
        }
    }
}

/// An IPv4 header and its flag bits.
#[derive(Debug)]
struct V4 {
    header: Ipv4Header,
    flags: u8,
}

const IPV4_DSFIELD: &[Step<V4>] = &[(2, |h, f| {
    f.int(
        Col::IpDsfield,
        (h.header.dscp.value() << 2) | h.header.ecn.value(),
    );
})];

const IPV4_FIELDS: &[Step<V4>] = &[
    (6, |h, f| f.int(Col::IpId, h.header.identification)),
    (8, |h, f| {
        f.int(Col::IpFlags, h.flags);
        f.flag(Col::IpFlagsDf, h.header.dont_fragment);
        f.flag(Col::IpFlagsMf, h.header.more_fragments);
        f.int(Col::IpFragOffset, h.header.fragment_offset.value());
    }),
    (9, |h, f| f.int(Col::IpTtl, h.header.time_to_live)),
    (10, |h, f| f.int(Col::IpProto, h.header.protocol.0)),
    (16, |h, f| {
        f.text(Col::IpSrc, &Ipv4Addr::from(h.header.source));
    }),
    (20, |h, f| {
        f.text(Col::IpDst, &Ipv4Addr::from(h.header.destination));
    }),
];

const IPV6_FIELDS: &[Step<Ipv6Header>] = &[
    (7, |h, f| {
        f.int(Col::Ipv6Plen, h.payload_length);
        f.int(Col::Ipv6Nxt, h.next_header.0);
    }),
    (8, |h, f| f.int(Col::Ipv6Hlim, h.hop_limit)),
    (24, |h, f| f.text(Col::Ipv6Src, &ipv6_text(h.source_addr()))),
    (40, |h, f| {
        f.text(Col::Ipv6Dst, &ipv6_text(h.destination_addr()));
    }),
];

/// tshark reads the first six bytes of an ICMP header before it shows any field.
const ICMP_FIELDS: &[Step<(u8, u8)>] = &[(6, |h, f| {
    f.int(Col::IcmpType, h.0);
    f.int(Col::IcmpCode, h.1);
})];

const UDP_FIELDS: &[Step<UdpHeader>] = &[
    (4, |h, f| {
        f.int(Col::UdpSrcport, h.source_port);
        f.int(Col::UdpDstport, h.destination_port);
    }),
    (6, |h, f| f.int(Col::UdpLength, h.length)),
];

fn udp(data: &[u8], f: &mut Fields) {
    if let Ok((h, _)) = UdpHeader::from_slice(&padded::<8>(data)) {
        emit(&h, data.len(), f, UDP_FIELDS);
    }
}

/// The IPv6 extension headers before the upper layer or the first fragment header: their
/// length, the protocol after them, and the fragment's offset, more-fragments flag and id.
fn ipv6_extensions(next: IpNumber, data: &[u8]) -> Option<(usize, IpNumber, Option<Fragment>)> {
    let (exts, proto, _, error) = Ipv6ExtensionsSlice::from_slice_lax(next, data);
    let mut consumed = 0;
    for ext in exts {
        consumed += match &ext {
            Ipv6ExtensionSlice::HopByHop(s)
            | Ipv6ExtensionSlice::Routing(s)
            | Ipv6ExtensionSlice::DestinationOptions(s) => s.slice().len(),
            Ipv6ExtensionSlice::Authentication(s) => s.slice().len(),
            Ipv6ExtensionSlice::Fragment(s) => {
                let fragment = Fragment {
                    offset: usize::from(s.fragment_offset().byte_offset()),
                    more: s.more_fragments(),
                    id: s.identification(),
                };
                return Some((consumed + s.slice().len(), s.next_header(), Some(fragment)));
            }
        };
    }
    error.is_none().then_some((consumed, proto, None))
}

fn mac(bytes: [u8; 6]) -> String {
    let parts: Vec<String> = bytes.iter().map(|b| format!("{b:02x}")).collect();
    parts.join(":")
}

/// An IPv6 address as tshark writes it: RFC 5952, except that an address whose first 96 bits
/// are zero ends in dotted IPv4 (`::1.2.3.4`), as BSD's `inet_ntop` does.
fn ipv6_text(addr: Ipv6Addr) -> String {
    let s = addr.segments();
    if s[..6] == [0; 6] && s[6] != 0 {
        let v4 = Ipv4Addr::from((u32::from(s[6]) << 16) | u32::from(s[7]));
        return format!("::{v4}");
    }
    addr.to_string()
}

/// What the layers above an IP header need from it.
#[derive(Clone, Copy, Debug)]
struct Datagram {
    proto: IpNumber,
    src: IpAddr,
    dst: IpAddr,
    fragment: Option<Fragment>,
}

/// Where a fragment's data goes in its datagram, and the datagram's identification.
#[derive(Clone, Copy, Debug)]
struct Fragment {
    offset: usize,
    more: bool,
    id: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct FragmentKey {
    src: IpAddr,
    dst: IpAddr,
    id: u32,
    proto: u8,
}

/// Datagrams being reassembled from their fragments.
#[derive(Debug, Default)]
struct Fragments {
    pending: HashMap<FragmentKey, Partial>,
}

/// The fragments of a datagram received so far.
#[derive(Debug, Default)]
struct Partial {
    parts: BTreeMap<usize, Vec<u8>>,
    total: Option<usize>,
}

impl Fragments {
    /// Adds a fragment; returns the datagram's payload once every byte of it has arrived.
    fn add(&mut self, ip: &Datagram, fragment: Fragment, data: &[u8]) -> Option<Vec<u8>> {
        let key = FragmentKey {
            src: ip.src,
            dst: ip.dst,
            id: fragment.id,
            proto: ip.proto.0,
        };
        let partial = self.pending.entry(key).or_default();
        partial
            .parts
            .entry(fragment.offset)
            .or_insert_with(|| data.to_vec());
        if !fragment.more {
            partial.total = Some(fragment.offset + data.len());
        }
        let whole = partial.assemble()?;
        self.pending.remove(&key);
        Some(whole)
    }
}

impl Partial {
    fn assemble(&self) -> Option<Vec<u8>> {
        let total = self.total?;
        let mut whole = Vec::with_capacity(total);
        for (&offset, part) in &self.parts {
            if offset > whole.len() {
                return None;
            }
            let overlap = whole.len() - offset;
            whole.extend_from_slice(part.get(overlap..).unwrap_or(&[]));
        }
        (whole.len() >= total).then(|| {
            whole.truncate(total);
            whole
        })
    }
}

/// TCP conversations, for the fields that depend on earlier segments.
#[derive(Debug, Default)]
struct TcpTracker {
    by_endpoints: HashMap<(Endpoint, Endpoint), usize>,
    /// Indexed by `tcp.stream`.
    conversations: Vec<[Flow; 2]>,
}

type Endpoint = (IpAddr, u16);

/// One direction of a conversation.
#[derive(Clone, Copy, Debug)]
struct Flow {
    /// The initial sequence number the relative numbers count from, once known.
    base: Option<u32>,
    /// The window scale shift; -1 unknown, -2 scaling not used.
    scale: i8,
}

impl Default for Flow {
    fn default() -> Flow {
        Flow {
            base: None,
            scale: -1,
        }
    }
}

/// Which sequence numbers a segment shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Numbering {
    /// tshark's analysis: relative numbers, segment length and next sequence number.
    Relative,
    /// Raw numbers: a segment shorter than its header, or quoted in an ICMPv6 error.
    Raw,
    /// Quoted in an ICMP error: tshark shows the raw sequence number early and no `seq_raw`.
    Quoted,
}

impl Numbering {
    fn of(quote: Quote, whole_header: bool) -> Numbering {
        match quote {
            Quote::Icmp4 { .. } => Numbering::Quoted,
            Quote::None if whole_header => Numbering::Relative,
            _ => Numbering::Raw,
        }
    }
}

/// A TCP header of which at least the ports were captured, its first 60 bytes (zero-filled)
/// and its length.
fn tcp_header(data: &[u8]) -> Option<(TcpHeader, [u8; 60], usize)> {
    if data.len() < 4 {
        return None;
    }
    let raw = padded::<60>(data);
    let header_len = usize::from(raw[12] >> 4) * 4;
    // etherparse refuses a data offset below 5, which tshark reports as bogus after the
    // sequence number: parse such a header as if it had no options.
    let mut patched = raw;
    patched[12] = (raw[12] & 0x0f) | ((header_len.max(20) / 4) as u8) << 4;
    let (header, _) = TcpHeader::from_slice(&patched).ok()?;
    Some((header, raw, header_len))
}

impl TcpTracker {
    fn segment(&mut self, seg: Segment<'_>, addrs: (IpAddr, IpAddr), quote: Quote, f: &mut Fields) {
        let captured = seg.data.len();
        let Some((h, raw, header_len)) = tcp_header(seg.data) else {
            return;
        };
        f.int(Col::TcpSrcport, h.source_port);
        f.int(Col::TcpDstport, h.destination_port);
        let numbering = Numbering::of(quote, seg.reported >= header_len);
        if numbering == Numbering::Quoted && captured >= 8 {
            f.int(Col::TcpSeq, h.sequence_number);
        }
        if captured < 16 {
            return;
        }
        let ends = ((addrs.0, h.source_port), (addrs.1, h.destination_port));
        let (stream, dir) = self.conversation(ends.0, ends.1, &h);
        f.count(Col::TcpStream, stream);
        let mut side = Side {
            flows: &mut self.conversations[stream],
            dir,
        };
        let len = seg.reported.saturating_sub(header_len);
        if !side.numbers(&h, header_len, len, numbering, f) {
            return;
        }
        header_fields(&h, &raw, side.fwd(), f);
        if captured < 20 {
            return;
        }
        f.int(Col::TcpUrgentPointer, h.urgent_pointer);
        let whole = options(&h, captured.min(header_len), &mut side.flows[dir], f);
        if h.syn && whole {
            side.verify_scaling(h.ack);
        }
    }

    /// The conversation of a segment and its direction in it, started anew on port reuse.
    fn conversation(&mut self, src: Endpoint, dst: Endpoint, h: &TcpHeader) -> (usize, usize) {
        let (key, dir) = if src <= dst {
            ((src, dst), 0)
        } else {
            ((dst, src), 1)
        };
        let next = self.conversations.len();
        let mut index = *self.by_endpoints.entry(key).or_insert(next);
        let reused = index != next
            && h.syn
            && !h.ack
            && self.conversations[index][dir]
                .base
                .is_some_and(|b| b != h.sequence_number);
        if reused {
            index = next;
            self.by_endpoints.insert(key, next);
        }
        if index == next {
            self.conversations.push([Flow::default(); 2]);
        }
        (index, dir)
    }
}

/// A conversation seen from the direction of one segment.
#[derive(Debug)]
struct Side<'a> {
    flows: &'a mut [Flow; 2],
    dir: usize,
}

impl Side<'_> {
    fn fwd(&self) -> Flow {
        self.flows[self.dir]
    }

    fn rev(&mut self) -> &mut Flow {
        &mut self.flows[1 - self.dir]
    }

    /// Adds the length and sequence fields, updating the initial sequence numbers when
    /// relative.  Returns false where tshark stops: after a header length below 20.
    fn numbers(
        &mut self,
        h: &TcpHeader,
        header_len: usize,
        len: usize,
        numbering: Numbering,
        f: &mut Fields,
    ) -> bool {
        let (seq, ack) = (h.sequence_number, h.acknowledgment_number);
        if numbering == Numbering::Relative {
            let (rel_seq, rel_ack) = self.relative(h);
            f.count(Col::TcpLen, len);
            f.int(Col::TcpSeq, rel_seq);
            f.int(Col::TcpSeqRaw, seq);
            if header_len < 20 {
                f.count(Col::TcpHdrLen, header_len);
                return false;
            }
            let next = rel_seq
                .wrapping_add(len as u32)
                .wrapping_add(u32::from(h.syn || h.fin));
            f.int(Col::TcpNxtseq, next);
            f.int(Col::TcpAck, rel_ack);
        } else {
            f.int(Col::TcpSeq, seq);
            if numbering == Numbering::Raw {
                f.int(Col::TcpSeqRaw, seq);
            }
            f.int(Col::TcpAck, ack);
        }
        f.int(Col::TcpAckRaw, ack);
        f.count(Col::TcpHdrLen, header_len);
        header_len >= 20
    }

    /// The relative sequence and acknowledgement numbers, noting the initial numbers: a SYN
    /// sets its direction's, else the first segment and the first acknowledgement seen do.
    fn relative(&mut self, h: &TcpHeader) -> (u32, u32) {
        let (seq, ack) = (h.sequence_number, h.acknowledgment_number);
        let fwd = &mut self.flows[self.dir];
        if h.syn {
            fwd.base = Some(seq);
        }
        let base = *fwd.base.get_or_insert(seq.wrapping_sub(1));
        let rel_ack = if h.ack {
            ack.wrapping_sub(*self.rev().base.get_or_insert(ack.wrapping_sub(1)))
        } else {
            ack
        };
        (seq.wrapping_sub(base), rel_ack)
    }

    /// After a SYN's options: a SYN without window scaling, or a SYN-ACK without it or
    /// answering a SYN without it, means that neither direction scales.
    fn verify_scaling(&mut self, synack: bool) {
        if self.fwd().scale == -1 {
            self.flows[self.dir].scale = -2;
            self.rev().scale = -2;
        } else if synack && self.rev().scale == -2 {
            self.flows[self.dir].scale = -2;
        }
    }
}

/// The flags and window fields.
fn header_fields(h: &TcpHeader, raw: &[u8; 60], flow: Flow, f: &mut Fields) {
    // tshark's flags field has the reserved bits too, which etherparse does not keep.
    f.int(
        Col::TcpFlags,
        u16::from_be_bytes([raw[12], raw[13]]) & 0x0fff,
    );
    f.flag(Col::TcpFlagsFin, h.fin);
    f.flag(Col::TcpFlagsSyn, h.syn);
    f.flag(Col::TcpFlagsReset, h.rst);
    f.flag(Col::TcpFlagsPush, h.psh);
    f.flag(Col::TcpFlagsAck, h.ack);
    f.flag(Col::TcpFlagsUrg, h.urg);
    let value = u32::from(h.window_size);
    f.int(Col::TcpWindowSizeValue, value);
    if h.syn {
        f.int(Col::TcpWindowSize, value);
    } else if flow.scale >= 0 {
        f.int(Col::TcpWindowSize, value << flow.scale);
        f.int(Col::TcpWindowSizeScalefactor, 1i64 << flow.scale);
    } else {
        f.int(Col::TcpWindowSize, value);
        f.int(Col::TcpWindowSizeScalefactor, flow.scale);
    }
}

/// The options tshark reports, from those within the first `captured` bytes of the header.
/// Like tshark, skips unknown options and known ones of a wrong length, and stops at the end
/// of the option list, at a bogus length and at an option running past the header.  Returns
/// false if the options were cut by the end of the captured bytes.
fn options(h: &TcpHeader, captured: usize, flow: &mut Flow, f: &mut Fields) -> bool {
    let all = h.options.as_slice();
    let mut iter = TcpOptionsIterator::from_slice(all);
    loop {
        let at = all.len() - iter.rest().len();
        match iter.next() {
            None | Some(Err(TcpOptionReadError::UnexpectedEndOfSlice { .. })) => return true,
            Some(Ok(option)) => {
                if !option_fields(&option, captured.saturating_sub(20 + at), flow, f) {
                    return false;
                }
            }
            Some(Err(_)) => {
                let len = usize::from(all.get(at + 1).copied().unwrap_or(0));
                if 20 + at + 2 > captured {
                    return false;
                }
                if len < 2 || at + len > all.len() {
                    return true;
                }
                iter = TcpOptionsIterator::from_slice(&all[at + len..]);
            }
        }
    }
}

/// Adds the fields of one option of which `captured` bytes were captured; false if cut.
fn option_fields(
    option: &TcpOptionElement,
    captured: usize,
    flow: &mut Flow,
    f: &mut Fields,
) -> bool {
    match *option {
        TcpOptionElement::Noop => true,
        TcpOptionElement::MaximumSegmentSize(mss) if captured >= 4 => {
            f.int(Col::TcpMss, mss);
            true
        }
        TcpOptionElement::WindowScale(shift) if captured >= 3 => {
            f.int(Col::TcpWscaleShift, shift);
            flow.scale = shift.min(14) as i8;
            true
        }
        TcpOptionElement::Timestamp(tsval, tsecr) if captured >= 6 => {
            f.int(Col::TcpTsval, tsval);
            if captured >= 10 {
                f.int(Col::TcpTsecr, tsecr);
            }
            captured >= 10
        }
        TcpOptionElement::SelectiveAcknowledgementPermitted => captured >= 2,
        TcpOptionElement::SelectiveAcknowledgement(_, rest) => {
            captured >= 10 + 8 * rest.iter().flatten().count()
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::PacketBuilder;

    fn tcp_syn() -> Vec<u8> {
        let options = [
            TcpOptionElement::MaximumSegmentSize(1460),
            TcpOptionElement::WindowScale(7),
        ];
        let builder = PacketBuilder::ethernet2([1; 6], [2; 6])
            .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .tcp(40000, 80, 7, 1000)
            .syn()
            .options(&options)
            .expect("options fit");
        let mut frame = Vec::new();
        builder.write(&mut frame, &[]).expect("a frame");
        frame
    }

    fn udp_over_ipv6() -> Vec<u8> {
        let builder = PacketBuilder::ethernet2([1; 6], [2; 6])
            .ipv6([0x20; 16], [0x30; 16], 9)
            .udp(5353, 53);
        let mut frame = Vec::new();
        builder.write(&mut frame, b"query").expect("a frame");
        frame
    }

    /// An ICMP port unreachable quoting the start of `quoted` (an Ethernet frame).
    fn icmp_error(quoted: &[u8]) -> Vec<u8> {
        let builder = PacketBuilder::ethernet2([2; 6], [1; 6])
            .ipv4([10, 0, 0, 9], [10, 0, 0, 1], 64)
            .icmpv4_raw(3, 3, [0; 4]);
        let mut frame = Vec::new();
        builder
            .write(&mut frame, &quoted[14..62.min(quoted.len())])
            .expect("a frame");
        frame
    }

    fn frames() -> Vec<Vec<u8>> {
        let syn = tcp_syn();
        vec![syn.clone(), udp_over_ipv6(), icmp_error(&syn)]
    }

    /// A little-endian microsecond pcap file.
    fn pcap(linktype: u32, frames: &[Vec<u8>]) -> Vec<u8> {
        let mut out = vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0];
        out.extend([0; 8]);
        out.extend(65535u32.to_le_bytes());
        out.extend(linktype.to_le_bytes());
        for (i, frame) in frames.iter().enumerate() {
            let len = frame.len() as u32;
            for word in [1_600_000_000 + i as u32, 250_000, len, len] {
                out.extend(word.to_le_bytes());
            }
            out.extend(frame);
        }
        out
    }

    fn block(kind: u32, body: &[u8]) -> Vec<u8> {
        let padded = body.len().div_ceil(4) * 4;
        let total = (12 + padded) as u32;
        let mut out = [kind.to_le_bytes(), total.to_le_bytes()].concat();
        out.extend(body);
        out.resize(8 + padded, 0);
        out.extend(total.to_le_bytes());
        out
    }

    /// A pcapng file with one Ethernet interface in nanoseconds, the packets on `interface`.
    fn pcapng(frames: &[Vec<u8>], interface: u32) -> Vec<u8> {
        let packets: Vec<(u32, Vec<u8>)> = frames.iter().map(|f| (interface, f.clone())).collect();
        pcapng_on(&[1], &packets)
    }

    /// A pcapng file with interfaces of `linktypes` in nanoseconds, and `packets` on them.
    fn pcapng_on(linktypes: &[u16], packets: &[(u32, Vec<u8>)]) -> Vec<u8> {
        let mut shb = 0x1a2b_3c4d_u32.to_le_bytes().to_vec();
        shb.extend([1, 0, 0, 0]);
        shb.extend((-1i64).to_le_bytes());
        let mut out = block(0x0a0d_0d0a, &shb);
        for linktype in linktypes {
            let mut idb = linktype.to_le_bytes().to_vec();
            idb.extend([0, 0, 0, 0, 0, 0, 9, 0, 1, 0, 9, 0, 0, 0, 0, 0, 0, 0]);
            out.extend(block(1, &idb));
        }
        for (interface, frame) in packets {
            let ticks: u64 = 1_600_000_000_123_456_789;
            let mut epb = interface.to_le_bytes().to_vec();
            epb.extend(((ticks >> 32) as u32).to_le_bytes());
            epb.extend((ticks as u32).to_le_bytes());
            epb.extend((frame.len() as u32).to_le_bytes());
            epb.extend((frame.len() as u32).to_le_bytes());
            epb.extend(frame);
            out.extend(block(6, &epb));
        }
        out
    }

    /// The byte offsets of the records (pcap, after the file header) or blocks (pcapng) of a
    /// little-endian capture.
    fn offsets(bytes: &[u8]) -> Vec<usize> {
        let word = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
        let pcap = bytes[..4] == [0xd4, 0xc3, 0xb2, 0xa1];
        let mut at = if pcap { 24 } else { 0 };
        let mut found = Vec::new();
        while at < bytes.len() {
            found.push(at);
            at += if pcap {
                16 + word(at + 8) as usize
            } else {
                word(at + 4) as usize
            };
        }
        found
    }

    /// `bytes` with the little-endian word at `at` set to `value`.
    fn patched(bytes: &[u8], at: usize, value: u32) -> Vec<u8> {
        let mut damaged = bytes.to_vec();
        damaged[at..at + 4].copy_from_slice(&value.to_le_bytes());
        damaged
    }

    /// Thirty packets: [`frames`] ten times over.
    fn thirty() -> Vec<Vec<u8>> {
        frames().into_iter().cycle().take(30).collect()
    }

    fn read(bytes: &[u8]) -> Result<RawTable, InputError> {
        read_from(
            Path::new("test.cap"),
            bytes,
            Some(bytes.len() as u64),
            false,
        )
    }

    fn read_strict(bytes: &[u8]) -> Result<RawTable, InputError> {
        read_from(Path::new("test.cap"), bytes, Some(bytes.len() as u64), true)
    }

    fn cell<'t>(table: &'t RawTable, row: usize, column: &str) -> &'t Cell {
        let index = COLUMNS.iter().position(|c| *c == column).expect("a column");
        &table.rows[row][index]
    }

    #[test]
    fn reads_a_row_per_packet() {
        let bytes = pcap(1, &frames());
        let table = read(&bytes).expect("a capture");
        assert_eq!(table.columns, COLUMNS);
        assert_eq!(table.report.records, 3);
        assert_eq!(table.report.bytes, bytes.len() as u64);
        assert!(table.report.warnings.is_empty());
        assert_eq!(
            table.origins,
            [Origin::Frame(1), Origin::Frame(2), Origin::Frame(3)]
        );
        assert_eq!(
            cell(&table, 0, "frame.time_epoch"),
            &Cell::Real(1_600_000_000.25)
        );
        assert_eq!(cell(&table, 0, "ip.src"), &Cell::Text("10.0.0.1".into()));
        assert_eq!(cell(&table, 0, "tcp.options.wscale.shift"), &Cell::Int(7));
        assert_eq!(
            cell(&table, 0, "tcp.window_size_scalefactor"),
            &Cell::Missing
        );
        assert_eq!(
            cell(&table, 0, "_ws.col.protocol"),
            &Cell::Text("TCP".into())
        );
        assert_eq!(
            cell(&table, 1, "ipv6.src"),
            &Cell::Text("2020:2020:2020:2020:2020:2020:2020:2020".into())
        );
        assert_eq!(cell(&table, 1, "udp.length"), &Cell::Int(13));
        assert_eq!(
            cell(&table, 2, "_ws.col.protocol"),
            &Cell::Text("ICMP".into())
        );
        assert_eq!(cell(&table, 2, "tcp.seq"), &Cell::Int(7));
        assert_eq!(cell(&table, 2, "tcp.stream"), &Cell::Int(0));
        let ng = read(&pcapng(&frames(), 0)).expect("a capture");
        let without_time = |t: &RawTable| -> Vec<Vec<Cell>> {
            t.rows.iter().map(|r| [&r[..1], &r[2..]].concat()).collect()
        };
        assert_eq!(without_time(&ng), without_time(&table));
        assert_eq!(
            cell(&ng, 0, "frame.time_epoch"),
            &Cell::Real("1600000000.123456789".parse().expect("a number"))
        );
    }

    #[test]
    fn truncated_file_keeps_the_packets_before_the_break() {
        for bytes in [pcap(1, &frames()), pcapng(&frames(), 0)] {
            let whole = read(&bytes).expect("a capture");
            let last_block =
                bytes.len() - (if bytes[0] == 0xd4 { 16 } else { 32 }) - frames()[2].len() - 3;
            for cut in [bytes.len() - 1, bytes.len() - 10] {
                let table = read(&bytes[..cut]).expect("damage is not an error");
                assert_eq!(table.rows, whole.rows[..2]);
                assert_eq!(table.report.records, 2);
                let warnings = &table.report.warnings;
                assert_eq!(warnings.len(), 1, "{warnings:?}");
                let record = if bytes[0] == 0xd4 {
                    "frame 3"
                } else {
                    "block 5 (frame 3)"
                };
                assert!(
                    warnings[0].starts_with(&format!("the file ends in the middle of {record}")),
                    "{warnings:?}"
                );
                assert!(
                    warnings[0].contains("(the file is cut short)"),
                    "{warnings:?}"
                );
                assert!(
                    warnings[0].ends_with("; kept the 2 packets before it"),
                    "{warnings:?}"
                );
                let offset = table.report.bytes as usize;
                assert!(
                    offset <= last_block + 3 && offset + 100 > last_block,
                    "{offset}"
                );
                assert!(
                    warnings[0].contains(&format!("byte offset {offset}")),
                    "{warnings:?}"
                );
            }
        }
    }

    #[test]
    fn a_bad_block_ends_the_reading_with_a_warning() {
        let mut bytes = pcapng(&frames(), 0);
        let last = bytes.len() - 4;
        let at = offsets(&bytes)[4];
        bytes[last] ^= 0x40;
        let table = read(&bytes).expect("damage is not an error");
        assert_eq!(table.report.records, 2);
        let len = bytes.len() - at;
        assert_eq!(
            table.report.warnings,
            [format!(
                "block 5 (frame 3) at byte offset {at} claims a block length of {len} bytes, but \
                 the copy of the length at its end reads {}: the capture is damaged there; the \
                 remaining {len} bytes are not read; kept the 2 packets before it",
                len ^ 0x40
            )]
        );
        let table = read(&pcapng(&frames(), 3)).expect("damage is not an error");
        assert_eq!(table.report.records, 0);
        let warnings = &table.report.warnings;
        assert!(
            warnings[0].starts_with(
                "block 3 (frame 1) at byte offset 60 is a packet on interface 3, which its \
                 section does not describe"
            ),
            "{warnings:?}"
        );
    }

    #[test]
    fn garbage_and_empty_files_are_format_errors() {
        let garbage = b"this is not a packet capture, just some text\n".repeat(10);
        for bytes in [&garbage[..], b"", b"\xd4\xc3\xb2"] {
            let error = read(bytes).expect_err("not a capture");
            assert!(matches!(error, InputError::Format { .. }), "{error}");
            assert!(error.to_string().starts_with("test.cap: "), "{error}");
        }
        let dir = tempfile::tempdir().expect("a temporary directory");
        let empty = dir.path().join("empty.pcap");
        std::fs::write(&empty, b"").expect("a file");
        let error = read_capture(&empty).expect_err("empty");
        assert!(error.to_string().contains("empty file"), "{error}");
        let missing = read_capture(&dir.path().join("missing.pcap")).expect_err("missing");
        assert!(matches!(missing, InputError::Io { .. }));
    }

    #[test]
    fn unsupported_link_types_give_frame_fields_and_one_named_warning() {
        for (linktype, name) in [
            (105, "link type 105 (IEEE 802.11)"),
            (0, "link type 0 (BSD loopback)"),
            (147, "link type 147 (user-defined)"),
            (4000, "link type 4000"),
        ] {
            let table = read(&pcap(linktype, &frames())).expect("a capture");
            assert_eq!(table.report.records, 3);
            assert_eq!(
                table.report.warnings,
                [format!(
                    "{name} is not supported: 3 packets have only the frame.* fields (the first \
                     is frame 1)"
                )]
            );
            for row in &table.rows {
                let present = row.iter().filter(|c| !c.is_missing()).count();
                assert_eq!(present, 4, "{row:?}");
            }
        }
        // pcapng: interfaces of several link types, one warning for each unsupported one.
        let packets: Vec<(u32, Vec<u8>)> = [0, 1, 2, 1, 0, 2, 1]
            .into_iter()
            .zip(frames().into_iter().cycle())
            .collect();
        let table = read(&pcapng_on(&[1, 105, 113 + 4000], &packets)).expect("a capture");
        assert_eq!(table.report.records, 7);
        assert_eq!(
            table.report.warnings,
            [
                "link type 105 (IEEE 802.11) is not supported: 3 packets have only the frame.* \
                 fields (the first is frame 2)",
                "link type 4113 is not supported: 2 packets have only the frame.* fields (the \
                 first is frame 3)",
            ]
        );
        assert_eq!(cell(&table, 0, "ip.src"), &Cell::Text("10.0.0.1".into()));
        assert_eq!(cell(&table, 1, "ip.src"), &Cell::Missing);
    }

    #[test]
    fn a_corrupt_pcap_length_is_not_taken_for_a_cut_file() {
        let bytes = pcap(1, &thirty());
        let whole = read(&bytes).expect("a capture");
        let at = offsets(&bytes)[10];
        let next = offsets(&bytes)[11];
        let rest = bytes.len() - at;
        let expect_ten = |table: &RawTable| {
            assert_eq!(table.rows, whole.rows[..10]);
            assert_eq!(table.report.bytes, at as u64);
            assert_eq!(
                table.report.warnings.len(),
                1,
                "{:?}",
                table.report.warnings
            );
        };
        // Larger than the snapshot length, the pcap maximum and the rest of the file.
        let table = read(&patched(&bytes, at + 8, 0x7fff_ffff)).expect("a capture");
        expect_ten(&table);
        assert_eq!(
            table.report.warnings[0],
            format!(
                "frame 11 at byte offset {at} claims a captured length of 2147483647 bytes, more \
                 than the snapshot length (65535 bytes), the pcap maximum of 262144 bytes for \
                 link type 1 (Ethernet) and the {} bytes left in the file: the capture is \
                 damaged there; the remaining {rest} bytes are not read; kept the 10 packets \
                 before it",
                rest - 16
            )
        );
        // Within the limits, but longer than the rest of the file, which holds more records.
        let table = read(&patched(&bytes, at + 8, 60_000)).expect("a capture");
        expect_ten(&table);
        assert_eq!(
            table.report.warnings[0],
            format!(
                "frame 11 at byte offset {at} claims a captured length of 60000 bytes, more than \
                 the {} bytes left in the file, yet a plausible packet record follows at byte \
                 offset {next}: the capture is damaged there; the remaining {rest} bytes are not \
                 read; kept the 10 packets before it",
                rest - 16
            )
        );
        // Really cut short: in the packet, and in its record header.
        let table = read(&bytes[..next - 5]).expect("a capture");
        expect_ten(&table);
        assert_eq!(
            table.report.warnings[0],
            format!(
                "the file ends in the middle of frame 11 at byte offset {at}, which claims a \
                 captured length of {} bytes: only {} bytes are left (the file is cut short); \
                 kept the 10 packets before it",
                next - at - 16,
                next - at - 21
            )
        );
        let table = read(&bytes[..at + 5]).expect("a capture");
        expect_ten(&table);
        assert_eq!(
            table.report.warnings[0],
            format!(
                "the file ends in the middle of the header of frame 11 at byte offset {at}: only \
                 5 of its 16 bytes are there (the file is cut short); kept the 10 packets before \
                 it"
            )
        );
        // A length too small to notice at once: the record after it is garbage, and the
        // warning points back at the packet whose length is the likely damage.
        let table = read(&patched(&bytes, at + 8, 200)).expect("a capture");
        assert_eq!(table.rows[..10], whole.rows[..10]);
        let warning = &table.report.warnings[0];
        let hint = format!(
            "(frame 11 before it claims 200 bytes captured of a {}-byte packet: its length is \
             probably what is wrong)",
            thirty()[10].len()
        );
        assert!(warning.contains(&hint), "{warning}");
    }

    #[test]
    fn a_corrupt_pcapng_length_is_not_taken_for_a_cut_file() {
        let bytes = pcapng(&thirty(), 0);
        let whole = read(&bytes).expect("a capture");
        let blocks = offsets(&bytes);
        // Block 13 holds frame 11.
        let (at, next) = (blocks[12], blocks[13]);
        let (len, rest) = (next - at, bytes.len() - at);
        let warning = |damaged: &[u8]| {
            let table = read(damaged).expect("a capture");
            assert_eq!(table.rows, whole.rows[..10]);
            assert_eq!(table.report.bytes, at as u64);
            assert_eq!(
                table.report.warnings.len(),
                1,
                "{:?}",
                table.report.warnings
            );
            table.report.warnings[0].clone()
        };
        let damaged =
            format!("the capture is damaged there; the remaining {rest} bytes are not read");
        let kept = "kept the 10 packets before it";
        assert_eq!(
            warning(&patched(&bytes, at + 20, 0x7fff_ffff)),
            format!(
                "block 13 (frame 11) at byte offset {at} claims a captured length of 2147483647 \
                 bytes, more than its block of {len} bytes holds ({} bytes): {damaged}; {kept}",
                len - 32
            )
        );
        assert_eq!(
            warning(&patched(&bytes, at + 4, 0x7fff_fff0)),
            format!(
                "block 13 (frame 11) at byte offset {at} claims a block length of 2147483632 \
                 bytes, more than the pcapng maximum (134348832 bytes) and the {rest} bytes left \
                 in the file: {damaged}; {kept}"
            )
        );
        assert_eq!(
            warning(&patched(&bytes, at + 4, 1 << 20)),
            format!(
                "block 13 (frame 11) at byte offset {at} claims a block length of 1048576 bytes, \
                 more than the {rest} bytes left in the file, yet a plausible block follows at \
                 byte offset {next}: {damaged}; {kept}"
            )
        );
        assert_eq!(
            warning(&patched(&bytes, at + 4, len as u32 + 8)),
            format!(
                "block 13 (frame 11) at byte offset {at} claims a block length of {} bytes, but \
                 the copy of the length at its end reads {}: {damaged}; {kept}",
                len + 8,
                u32::from_le_bytes(bytes[next + 4..next + 8].try_into().expect("4 bytes"))
            )
        );
        assert_eq!(
            warning(&patched(&bytes, at + 4, 6)),
            format!(
                "block 13 (frame 11) at byte offset {at} claims a block length of 6 bytes, not a \
                 multiple of 4: {damaged}; {kept}"
            )
        );
        assert_eq!(
            warning(&patched(&bytes, at + 4, 28)),
            format!(
                "block 13 (frame 11) at byte offset {at} claims a block length of 28 bytes, less \
                 than the 32 bytes a block of its type (enhanced packet) needs: {damaged}; {kept}"
            )
        );
        assert_eq!(
            warning(&bytes[..next - 8]),
            format!(
                "the file ends in the middle of block 13 (frame 11) at byte offset {at}, which \
                 claims a block length of {len} bytes: only {} bytes are left (the file is cut \
                 short); {kept}",
                len - 8
            )
        );
        assert_eq!(
            warning(&bytes[..at + 6]),
            format!(
                "the file ends in the middle of the header of block 13 (frame 11) at byte offset \
                 {at}: only 6 of its 8 bytes are there (the file is cut short); {kept}"
            )
        );
    }

    #[test]
    fn strict_reading_makes_damage_an_error() {
        let bytes = pcap(1, &thirty());
        let lenient = read(&bytes).expect("a capture");
        let strict = read_strict(&bytes).expect("a capture");
        assert_eq!(strict.rows, lenient.rows);
        assert!(strict.report.warnings.is_empty());
        let at = offsets(&bytes)[10];
        let record = |result: Result<RawTable, InputError>| match result {
            Err(InputError::Record {
                path,
                origin,
                message,
            }) => {
                assert_eq!(path, Path::new("test.cap"));
                (origin, message)
            }
            other => panic!("not a record error: {other:?}"),
        };
        let (origin, message) = record(read_strict(&patched(&bytes, at + 8, 0x7fff_ffff)));
        assert_eq!(origin, Origin::Frame(11));
        assert!(
            message.starts_with(&format!(
                "the packet record at byte offset {at} claims a captured length of 2147483647 \
                 bytes"
            )),
            "{message}"
        );
        let (origin, message) = record(read_strict(&bytes[..at + 20]));
        assert_eq!(origin, Origin::Frame(11));
        assert!(
            message.starts_with(&format!(
                "the file ends in the middle of the packet record at byte offset {at}"
            )),
            "{message}"
        );
        let error = read_strict(&pcap(105, &frames())).expect_err("unsupported");
        assert_eq!(
            error.to_string(),
            "test.cap: frame 1: link type 105 (IEEE 802.11) is not supported (supported: \
             Ethernet (1), raw IP (101, 12, 14, 228, 229) and Linux cooked captures (113, 276))"
        );
        // pcapng: damage in a packet block names the frame, damage elsewhere is a format error.
        let ng = pcapng(&thirty(), 0);
        let blocks = offsets(&ng);
        let (origin, message) = record(read_strict(&patched(&ng, blocks[12] + 20, 1 << 30)));
        assert_eq!(origin, Origin::Frame(11));
        assert!(
            message.starts_with(&format!(
                "block 13 at byte offset {} claims a captured length",
                blocks[12]
            )),
            "{message}"
        );
        let error = read_strict(&patched(&ng, 28 + 4, 1 << 30)).expect_err("damaged");
        assert!(matches!(error, InputError::Format { .. }), "{error:?}");
        assert!(
            error.to_string().starts_with(
                "test.cap: block 2 at byte offset 28 claims a block length of 1073741824 bytes"
            ),
            "{error}"
        );
        let (origin, _) = record(read_strict(&pcapng(&frames(), 3)));
        assert_eq!(origin, Origin::Frame(1));
        // The public entry points, on a file.
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("damaged.pcap");
        std::fs::write(&path, patched(&bytes, at + 8, 0x7fff_ffff)).expect("a file");
        let table = read_capture(&path).expect("a capture");
        assert_eq!(table.rows.len(), 10);
        assert_eq!(
            table.report.warnings,
            read_capture_with(&path, false)
                .expect("a capture")
                .report
                .warnings
        );
        let error = read_capture_with(&path, true).expect_err("damaged");
        assert!(
            matches!(
                error,
                InputError::Record {
                    origin: Origin::Frame(11),
                    ..
                }
            ),
            "{error:?}"
        );
    }

    #[test]
    fn early_damage_is_reported_even_without_packets() {
        let bytes = pcap(1, &thirty());
        let rest = bytes.len() - 24;
        for captured in [0x7fff_ffff, u32::MAX, 262_145, 1 << 20, 60_000, rest as u32] {
            let table = read(&patched(&bytes, 24 + 8, captured)).expect("a capture");
            assert!(table.rows.is_empty());
            let warnings = &table.report.warnings;
            assert_eq!(warnings.len(), 1, "{captured}: {warnings:?}");
            assert!(
                warnings[0].starts_with(&format!(
                    "frame 1 at byte offset 24 claims a captured length of {captured} bytes"
                )),
                "{warnings:?}"
            );
            assert!(warnings[0].ends_with("kept the 0 packets before it"));
            let error = read_strict(&patched(&bytes, 24 + 8, captured)).expect_err("damaged");
            assert!(
                error.to_string().starts_with("test.cap: frame 1: "),
                "{error}"
            );
        }
        for cut in [30, 50] {
            let table = read(&bytes[..cut]).expect("a capture");
            let warnings = &table.report.warnings;
            assert!(
                warnings[0].starts_with("the file ends in the middle of ")
                    && warnings[0].contains("frame 1 at byte offset 24"),
                "{warnings:?}"
            );
        }
        // pcapng: the section header, the interface description, the first packet block.
        let ng = pcapng(&thirty(), 0);
        for value in [0, 13, 1 << 16, u32::MAX] {
            let error = read(&patched(&ng, 4, value)).expect_err("no section header");
            assert!(matches!(error, InputError::Format { .. }), "{error:?}");
            assert!(
                error.to_string().starts_with(&format!(
                    "test.cap: block 1 at byte offset 0 claims a block length of {value} bytes"
                )),
                "{error}"
            );
        }
        let error = read(&ng[..20]).expect_err("no section header");
        assert_eq!(
            error.to_string(),
            "test.cap: the file ends in the middle of block 1 at byte offset 0, which claims a \
             block length of 28 bytes: only 20 bytes are left (the file is cut short)"
        );
        let error = read(&pcap(1, &[])[..20]).expect_err("no file header");
        assert_eq!(
            error.to_string(),
            "test.cap: the file ends in the middle of the pcap file header: only 20 of its 24 \
             bytes are there (the file is cut short)"
        );
        // Block lengths, and captured lengths too large for the block.  (A captured length
        // too small leaves a consistent block, whose rest is read as options.)
        for (at, start, values) in [
            (
                28 + 4,
                "block 2 at byte offset 28 ",
                [0, 13, 1 << 16, 1 << 24, u32::MAX],
            ),
            (
                60 + 4,
                "block 3 (frame 1) at byte offset 60 ",
                [0, 13, 1 << 16, 1 << 24, u32::MAX],
            ),
            (
                60 + 20,
                "block 3 (frame 1) at byte offset 60 ",
                [99, 1000, 1 << 16, 1 << 24, u32::MAX],
            ),
        ] {
            for value in values {
                let table = read(&patched(&ng, at, value)).expect("a capture");
                assert!(table.rows.is_empty(), "{at} {value}");
                let warnings = &table.report.warnings;
                assert_eq!(warnings.len(), 1, "{at} {value}: {warnings:?}");
                assert!(warnings[0].starts_with(start), "{at} {value}: {warnings:?}");
                assert!(warnings[0].ends_with("kept the 0 packets before it"));
            }
        }
        for cut in [40, 64, 80] {
            let table = read(&ng[..cut]).expect("a capture");
            let warnings = &table.report.warnings;
            assert!(
                warnings[0].starts_with("the file ends in the middle of "),
                "{warnings:?}"
            );
            assert!(warnings[0].contains(" at byte offset "), "{warnings:?}");
        }
    }

    #[test]
    fn every_early_stop_says_where() {
        // Whatever the length fields of the first records say, reading stops with a warning
        // that names the place, or reads everything.
        let packets = thirty();
        for bytes in [pcap(1, &packets), pcapng(&packets, 0)] {
            let fields: Vec<usize> = if bytes[0] == 0xd4 {
                offsets(&bytes)[..3]
                    .iter()
                    .flat_map(|&at| [at + 8, at + 12])
                    .collect()
            } else {
                offsets(&bytes)[..5]
                    .iter()
                    .flat_map(|&at| [at + 4, at + 20])
                    .collect()
            };
            for at in fields {
                for value in [0, 1, 3, 16, 999, 65_535, 262_145, 1 << 24, u32::MAX] {
                    let damaged = patched(&bytes, at, value);
                    let table = match read(&damaged) {
                        Ok(table) => table,
                        // The section header is damaged: nothing is read.
                        Err(InputError::Format { message, .. }) => {
                            assert!(
                                message.starts_with("block 1 at byte offset 0 "),
                                "{message}"
                            );
                            continue;
                        }
                        Err(e) => panic!("{at} {value}: {e}"),
                    };
                    let warnings = &table.report.warnings;
                    if table.rows.len() < packets.len() {
                        assert!(
                            warnings.iter().any(|w| w.contains(" at byte offset ")),
                            "{at} {value}: {warnings:?}"
                        );
                    }
                    if !warnings.is_empty() {
                        assert!(read_strict(&damaged).is_err(), "{at} {value}: {warnings:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn unknown_blocks_are_skipped_with_a_warning() {
        let mut bytes = pcapng(&frames()[..1], 0);
        let at = bytes.len();
        bytes.extend(block(0x0000_1234, &[1, 2, 3, 4]));
        bytes.extend(block(2, &[0; 28]));
        bytes.extend(block(0x0000_1234, &[]));
        bytes.extend(&pcapng(&frames()[1..2], 0)[60..]);
        let table = read(&bytes).expect("a capture");
        assert_eq!(table.rows.len(), 2);
        assert_eq!(table.report.bytes, bytes.len() as u64);
        assert_eq!(
            table.report.warnings,
            [
                format!(
                    "2 blocks of unknown type 0x00001234 skipped (the first is block 4 at byte \
                     offset {at})"
                ),
                format!(
                    "1 obsolete packet block (type 2, packets not read) skipped (block 5 at byte \
                     offset {})",
                    at + 16
                ),
            ]
        );
    }

    /// A little-endian file of [`pcapng_on`] rewritten big-endian.
    fn big_endian(bytes: &[u8]) -> Vec<u8> {
        let mut out = bytes.to_vec();
        let swap = |out: &mut Vec<u8>, at: usize, n: usize| out[at..at + n].reverse();
        for at in offsets(bytes) {
            let kind = u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
            let len = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().expect("4 bytes"));
            for field in [0, 4, len as usize - 4] {
                swap(&mut out, at + field, 4);
            }
            match kind {
                0x0a0d_0d0a => [(8, 4), (12, 2), (14, 2), (16, 8)]
                    .into_iter()
                    .for_each(|(field, n)| swap(&mut out, at + field, n)),
                // The link type, the snap length, and the `if_tsresol` option's code and length.
                1 => [(8, 2), (12, 4), (16, 2), (18, 2)]
                    .into_iter()
                    .for_each(|(field, n)| swap(&mut out, at + field, n)),
                6 => (8..28)
                    .step_by(4)
                    .for_each(|field| swap(&mut out, at + field, 4)),
                _ => unreachable!("no such block in the test files"),
            }
        }
        out
    }

    #[test]
    fn big_endian_pcapng_is_checked_in_its_byte_order() {
        let little = pcapng(&thirty(), 0);
        let big = big_endian(&little);
        let whole = read(&big).expect("a capture");
        assert_eq!(whole.rows, read(&little).expect("a capture").rows);
        assert!(whole.report.warnings.is_empty());
        let at = offsets(&little)[12];
        let mut damaged = big.clone();
        damaged[at + 20..at + 24].copy_from_slice(&5000u32.to_be_bytes());
        let table = read(&damaged).expect("a capture");
        assert_eq!(table.rows, whole.rows[..10]);
        let warning = &table.report.warnings[0];
        assert!(
            warning.starts_with(&format!(
                "block 13 (frame 11) at byte offset {at} claims a captured length of 5000 bytes"
            )),
            "{warning}"
        );
        let table = read(&big[..at + 40]).expect("a capture");
        let warning = &table.report.warnings[0];
        assert!(
            warning.starts_with(&format!(
                "the file ends in the middle of block 13 (frame 11) at byte offset {at}, which \
                 claims a block length of {} bytes",
                offsets(&little)[13] - at
            )),
            "{warning}"
        );
    }

    #[test]
    fn never_panics_on_damaged_input() {
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        let mut random = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for bytes in [pcap(1, &frames()), pcapng(&frames(), 0)] {
            for cut in 0..bytes.len() {
                let _ = read(&bytes[..cut]);
            }
            for _ in 0..2000 {
                let mut damaged = bytes.clone();
                for _ in 0..1 + random() % 8 {
                    let at = random() as usize % damaged.len();
                    damaged[at] = random() as u8;
                }
                let _ = read(&damaged);
            }
        }
    }

    #[test]
    fn never_panics_on_random_packets() {
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let mut random = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut decoder = Decoder::default();
        let templates = frames();
        for number in 0..50_000u64 {
            let template = &templates[number as usize % templates.len()];
            let mut data = template[..random() as usize % (template.len() + 1)].to_vec();
            for _ in 0..random() % 6 {
                if !data.is_empty() {
                    let at = random() as usize % data.len();
                    data[at] = random() as u8;
                }
            }
            let linktype = [1, 101, 113, 228, 229, 276][number as usize % 6];
            let start = if linktype == 1 { 0 } else { 14.min(data.len()) };
            let frame = Frame {
                linktype,
                time: None,
                len: random() as u32 % 2000,
                data: &data[start..],
            };
            let (row, supported) = decoder.decode(number + 1, &frame);
            assert!(supported);
            assert_eq!(row.len(), COLUMNS.len());
        }
    }

    #[test]
    fn helpers_follow_tshark() {
        assert_eq!(units_per_second(6), Some(1_000_000));
        assert_eq!(units_per_second(0x80 | 20), Some(1 << 20));
        assert_eq!(units_per_second(0x80 | 64), None);
        assert_eq!(units_per_second(20), None);
        let iface = Interface {
            linktype: 1,
            units: 1 << 20,
            offset: -5,
            snaplen: 0,
        };
        assert_eq!(
            timestamp((10 << 20) + (1 << 19), iface),
            Some((5, 500_000_000))
        );
        assert_eq!(
            ipv6_text("::1.2.3.4".parse().expect("an address")),
            "::1.2.3.4"
        );
        assert_eq!(
            ipv6_text("::ffff:1.2.3.4".parse().expect("an address")),
            "::ffff:1.2.3.4"
        );
        assert_eq!(ipv6_text("::1".parse().expect("an address")), "::1");
        assert_eq!(
            ipv6_text("2001:db8::".parse().expect("an address")),
            "2001:db8::"
        );
        assert_eq!(mac([0, 0x1b, 0x2c, 0xa, 0xff, 1]), "00:1b:2c:0a:ff:01");
        assert_eq!(epoch(1_490_976_022, 526_783_000), 1_490_976_022.526_783);
    }
}
