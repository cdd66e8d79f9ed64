//! A small generic-netlink client: message building and attribute parsing as pure
//! functions over bytes, and one bounded request/reply exchange over a raw socket.
//!
//! Integers in netlink messages are in host byte order (the peer is the local kernel).
//! Every receive has a timeout and the whole exchange a byte and message budget, so a
//! silent or chatty kernel cannot hang or bloat the reader.

use nix::errno::Errno;
use nix::sys::socket::{
    bind, recv, sendto, setsockopt, socket, sockopt, AddressFamily, MsgFlags, NetlinkAddr,
    SockFlag, SockProtocol, SockType,
};
use nix::sys::time::TimeVal;
use std::fmt;
use std::os::fd::{AsRawFd, OwnedFd};

// Header sizes, message types and flags from include/uapi/linux/netlink.h and genetlink.h.
pub(crate) const NLMSG_HDRLEN: usize = 16;
pub(crate) const GENL_HDRLEN: usize = 4;
pub(crate) const NLA_HDRLEN: usize = 4;

pub(crate) const NLMSG_NOOP: u16 = 1;
pub(crate) const NLMSG_ERROR: u16 = 2;
pub(crate) const NLMSG_DONE: u16 = 3;
pub(crate) const NLMSG_OVERRUN: u16 = 4;

pub(crate) const NLM_F_REQUEST: u16 = 0x1;
pub(crate) const NLM_F_MULTI: u16 = 0x2;
pub(crate) const NLM_F_ACK: u16 = 0x4;
pub(crate) const NLM_F_DUMP: u16 = 0x300;

/// The generic-netlink controller family and its "get family" command.
pub(crate) const GENL_ID_CTRL: u16 = 0x10;
pub(crate) const CTRL_CMD_GETFAMILY: u8 = 3;
pub(crate) const CTRL_ATTR_FAMILY_ID: u16 = 1;
pub(crate) const CTRL_ATTR_FAMILY_NAME: u16 = 2;

/// Masks off NLA_F_NESTED (0x8000) and NLA_F_NET_BYTEORDER (0x4000).
const NLA_TYPE_MASK: u16 = 0x3fff;

/// The receive buffer: larger than any dump skb the kernel builds (at most 32 KiB).
const RECV_BUFFER: usize = 64 * 1024;
/// The most bytes one exchange may receive.
const MAX_REPLY_BYTES: usize = 4 << 20;
/// The most messages one exchange may receive.
const MAX_REPLY_MESSAGES: usize = 4096;
/// How long one receive waits. Built by `TimeVal::new` so the seconds take the target's
/// `time_t`, which is 32 bits on armv7 glibc.
const RECV_TIMEOUT: TimeVal = TimeVal::new(1, 0);

/// Why a netlink exchange or parse failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum NetlinkError {
    /// Fewer bytes than a header or a declared length needs.
    Truncated,
    /// A length field smaller than its own header.
    BadLength,
    /// An attribute whose payload has the wrong size for its type.
    BadAttribute(u16),
    /// The kernel answered with this errno.
    Kernel(Errno),
    /// A socket call failed.
    Socket(Errno),
    /// No reply within the receive timeout.
    Timeout,
    /// The reply was larger than the budget or the kernel reported an overrun.
    Overflow,
}

impl fmt::Display for NetlinkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NetlinkError::Truncated => f.write_str("truncated netlink message"),
            NetlinkError::BadLength => f.write_str("netlink length field too small"),
            NetlinkError::BadAttribute(t) => write!(f, "netlink attribute {t} has a bad size"),
            NetlinkError::Kernel(e) => write!(f, "kernel answered {}", e.desc().to_lowercase()),
            NetlinkError::Socket(e) => write!(f, "netlink socket: {}", e.desc().to_lowercase()),
            NetlinkError::Timeout => f.write_str("no netlink reply in time"),
            NetlinkError::Overflow => f.write_str("netlink reply too large"),
        }
    }
}

/// One netlink message, borrowed from a receive buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Message<'a> {
    pub(crate) kind: u16,
    pub(crate) flags: u16,
    pub(crate) seq: u32,
    pub(crate) payload: &'a [u8],
}

/// One attribute; `kind` has the nested and byte-order flags masked off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Attr<'a> {
    pub(crate) kind: u16,
    pub(crate) data: &'a [u8],
}

/// Rounds a length up to the 4-byte netlink alignment.
pub(crate) const fn align4(n: usize) -> usize {
    (n + 3) & !3
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// Builds a generic-netlink request: netlink header, genl header, attributes.
pub(crate) fn build_request(
    family: u16,
    flags: u16,
    seq: u32,
    cmd: u8,
    version: u8,
    attrs: &[(u16, &[u8])],
) -> Vec<u8> {
    let mut msg = vec![0u8; NLMSG_HDRLEN];
    msg.extend_from_slice(&[cmd, version, 0, 0]);
    for (kind, data) in attrs {
        let len = NLA_HDRLEN + data.len();
        msg.extend_from_slice(&u16::try_from(len).unwrap_or(u16::MAX).to_ne_bytes());
        msg.extend_from_slice(&kind.to_ne_bytes());
        msg.extend_from_slice(data);
        msg.resize(align4(msg.len()), 0);
    }
    let total = u32::try_from(msg.len()).unwrap_or(u32::MAX);
    msg[0..4].copy_from_slice(&total.to_ne_bytes());
    msg[4..6].copy_from_slice(&family.to_ne_bytes());
    msg[6..8].copy_from_slice(&flags.to_ne_bytes());
    msg[8..12].copy_from_slice(&seq.to_ne_bytes());
    // nlmsg_pid stays 0: the kernel fills in the sender's port id.
    msg
}

/// Splits a receive buffer into netlink messages.
pub(crate) fn parse_messages(buf: &[u8]) -> Result<Vec<Message<'_>>, NetlinkError> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < buf.len() {
        let rest = &buf[at..];
        if rest.len() < NLMSG_HDRLEN {
            return Err(NetlinkError::Truncated);
        }
        let len = u32_at(rest, 0).ok_or(NetlinkError::Truncated)? as usize;
        if len < NLMSG_HDRLEN {
            return Err(NetlinkError::BadLength);
        }
        if len > rest.len() {
            return Err(NetlinkError::Truncated);
        }
        out.push(Message {
            kind: u16_at(rest, 4).ok_or(NetlinkError::Truncated)?,
            flags: u16_at(rest, 6).ok_or(NetlinkError::Truncated)?,
            seq: u32_at(rest, 8).ok_or(NetlinkError::Truncated)?,
            payload: &rest[NLMSG_HDRLEN..len],
        });
        at += align4(len).min(rest.len());
    }
    Ok(out)
}

/// Splits an attribute area into attributes. The last attribute may lack its padding.
pub(crate) fn parse_attrs(buf: &[u8]) -> Result<Vec<Attr<'_>>, NetlinkError> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < buf.len() {
        let rest = &buf[at..];
        if rest.len() < NLA_HDRLEN {
            return Err(NetlinkError::Truncated);
        }
        let len = usize::from(u16_at(rest, 0).ok_or(NetlinkError::Truncated)?);
        if len < NLA_HDRLEN {
            return Err(NetlinkError::BadLength);
        }
        if len > rest.len() {
            return Err(NetlinkError::Truncated);
        }
        let kind = u16_at(rest, 2).ok_or(NetlinkError::Truncated)? & NLA_TYPE_MASK;
        out.push(Attr {
            kind,
            data: &rest[NLA_HDRLEN..len],
        });
        at += align4(len).min(rest.len());
    }
    Ok(out)
}

/// The attributes of a generic-netlink payload (after its 4-byte genl header), with the
/// genl command.
pub(crate) fn genl_attrs(payload: &[u8]) -> Result<(u8, Vec<Attr<'_>>), NetlinkError> {
    let cmd = *payload.first().ok_or(NetlinkError::Truncated)?;
    let area = payload.get(GENL_HDRLEN..).ok_or(NetlinkError::Truncated)?;
    Ok((cmd, parse_attrs(area)?))
}

/// A 16-bit attribute; any other width is an error.
pub(crate) fn attr_u16(a: &Attr<'_>) -> Result<u16, NetlinkError> {
    Ok(u16::from_ne_bytes(
        a.data
            .try_into()
            .map_err(|_| NetlinkError::BadAttribute(a.kind))?,
    ))
}

/// A 32-bit attribute; any other width is an error.
pub(crate) fn attr_u32(a: &Attr<'_>) -> Result<u32, NetlinkError> {
    Ok(u32::from_ne_bytes(
        a.data
            .try_into()
            .map_err(|_| NetlinkError::BadAttribute(a.kind))?,
    ))
}

/// A NUL-terminated string attribute, lossily decoded.
pub(crate) fn attr_string(a: &Attr<'_>) -> String {
    let body = a.data.split(|b| *b == 0).next().unwrap_or(a.data);
    String::from_utf8_lossy(body).into_owned()
}

/// The errno of an NLMSG_ERROR payload; 0 is an acknowledgement.
pub(crate) fn error_code(payload: &[u8]) -> Result<i32, NetlinkError> {
    let bytes: [u8; 4] = payload
        .get(0..4)
        .and_then(|b| b.try_into().ok())
        .ok_or(NetlinkError::Truncated)?;
    Ok(i32::from_ne_bytes(bytes))
}

/// Finds the family id in a CTRL_CMD_NEWFAMILY reply payload.
pub(crate) fn parse_family_id(payload: &[u8]) -> Result<Option<u16>, NetlinkError> {
    let (_, attrs) = genl_attrs(payload)?;
    for a in attrs {
        if a.kind == CTRL_ATTR_FAMILY_ID {
            return attr_u16(&a).map(Some);
        }
    }
    Ok(None)
}

/// The payloads of the messages that answer request `seq`, collected until the exchange
/// ends. Messages with another sequence number (stale replies) are skipped.
#[derive(Debug, Default)]
pub(crate) struct ReplyCollector {
    pub(crate) payloads: Vec<Vec<u8>>,
    pub(crate) done: bool,
    bytes: usize,
}

impl ReplyCollector {
    /// Takes one received buffer; errors end the exchange.
    pub(crate) fn take(&mut self, buf: &[u8], seq: u32, dump: bool) -> Result<(), NetlinkError> {
        self.bytes += buf.len();
        if self.bytes > MAX_REPLY_BYTES {
            return Err(NetlinkError::Overflow);
        }
        for msg in parse_messages(buf)? {
            if msg.seq != seq {
                continue;
            }
            match msg.kind {
                NLMSG_NOOP => {}
                NLMSG_DONE => self.done = true,
                NLMSG_OVERRUN => return Err(NetlinkError::Overflow),
                NLMSG_ERROR => match error_code(msg.payload)? {
                    0 => self.done = true,
                    code => {
                        return Err(NetlinkError::Kernel(Errno::from_raw(code.saturating_abs())))
                    }
                },
                _ => {
                    if self.payloads.len() >= MAX_REPLY_MESSAGES {
                        return Err(NetlinkError::Overflow);
                    }
                    self.payloads.push(msg.payload.to_vec());
                    if !dump && msg.flags & NLM_F_MULTI == 0 {
                        self.done = true;
                    }
                }
            }
        }
        Ok(())
    }
}

/// A generic-netlink socket with a receive timeout.
#[derive(Debug)]
pub(crate) struct GenlSocket {
    fd: OwnedFd,
    seq: u32,
}

impl GenlSocket {
    /// Opens and binds a NETLINK_GENERIC socket with a 1 s receive timeout.
    pub(crate) fn open() -> Result<GenlSocket, NetlinkError> {
        let fd = socket(
            AddressFamily::Netlink,
            SockType::Raw,
            SockFlag::SOCK_CLOEXEC,
            SockProtocol::NetlinkGeneric,
        )
        .map_err(NetlinkError::Socket)?;
        setsockopt(&fd, sockopt::ReceiveTimeout, &RECV_TIMEOUT).map_err(NetlinkError::Socket)?;
        bind(fd.as_raw_fd(), &NetlinkAddr::new(0, 0)).map_err(NetlinkError::Socket)?;
        Ok(GenlSocket { fd, seq: 1 })
    }

    /// Sends one request and returns the payloads of its replies.
    pub(crate) fn exchange(
        &mut self,
        family: u16,
        flags: u16,
        cmd: u8,
        version: u8,
        attrs: &[(u16, &[u8])],
    ) -> Result<Vec<Vec<u8>>, NetlinkError> {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let dump = flags & NLM_F_DUMP == NLM_F_DUMP;
        let request = build_request(family, flags | NLM_F_REQUEST, seq, cmd, version, attrs);
        sendto(
            self.fd.as_raw_fd(),
            &request,
            &NetlinkAddr::new(0, 0),
            MsgFlags::empty(),
        )
        .map_err(NetlinkError::Socket)?;
        let mut collector = ReplyCollector::default();
        let mut buf = vec![0u8; RECV_BUFFER];
        while !collector.done {
            let n = match recv(self.fd.as_raw_fd(), &mut buf, MsgFlags::empty()) {
                Ok(n) => n,
                Err(Errno::EAGAIN | Errno::EINTR) => return Err(NetlinkError::Timeout),
                Err(e) => return Err(NetlinkError::Socket(e)),
            };
            if n == 0 {
                return Err(NetlinkError::Truncated);
            }
            collector.take(&buf[..n], seq, dump)?;
        }
        Ok(collector.payloads)
    }

    /// Resolves a generic-netlink family name to its id; `None` when the kernel does not
    /// know the family.
    pub(crate) fn family_id(&mut self, name: &str) -> Result<Option<u16>, NetlinkError> {
        let mut attr = name.as_bytes().to_vec();
        attr.push(0);
        let replies = match self.exchange(
            GENL_ID_CTRL,
            NLM_F_ACK,
            CTRL_CMD_GETFAMILY,
            1,
            &[(CTRL_ATTR_FAMILY_NAME, &attr)],
        ) {
            Ok(r) => r,
            Err(NetlinkError::Kernel(Errno::ENOENT)) => return Ok(None),
            Err(e) => return Err(e),
        };
        for payload in replies {
            if let Some(id) = parse_family_id(&payload)? {
                return Ok(Some(id));
            }
        }
        Ok(None)
    }
}

/// Test helpers that write bytes the way the kernel lays them out.
#[cfg(test)]
pub(crate) mod wire {
    use super::align4;

    /// One attribute with its padding.
    pub(crate) fn attr(kind: u16, data: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&((4 + data.len()) as u16).to_ne_bytes());
        v.extend_from_slice(&kind.to_ne_bytes());
        v.extend_from_slice(data);
        v.resize(align4(v.len()), 0);
        v
    }

    /// A nested attribute (NLA_F_NESTED set, as the kernel sets it for nl80211).
    pub(crate) fn nested(kind: u16, inner: &[Vec<u8>]) -> Vec<u8> {
        attr(kind | 0x8000, &inner.concat())
    }

    /// One netlink message carrying a genl header and attributes.
    pub(crate) fn genl_msg(kind: u16, flags: u16, seq: u32, cmd: u8, attrs: &[Vec<u8>]) -> Vec<u8> {
        let body = [vec![cmd, 1, 0, 0], attrs.concat()].concat();
        msg(kind, flags, seq, &body)
    }

    /// One netlink message with a raw payload.
    pub(crate) fn msg(kind: u16, flags: u16, seq: u32, payload: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&((16 + payload.len()) as u32).to_ne_bytes());
        v.extend_from_slice(&kind.to_ne_bytes());
        v.extend_from_slice(&flags.to_ne_bytes());
        v.extend_from_slice(&seq.to_ne_bytes());
        v.extend_from_slice(&4242u32.to_ne_bytes());
        v.extend_from_slice(payload);
        v.resize(align4(v.len()), 0);
        v
    }

    /// An NLMSG_ERROR message carrying `errno` (negative) and the request header.
    pub(crate) fn error(seq: u32, errno: i32) -> Vec<u8> {
        let mut payload = errno.to_ne_bytes().to_vec();
        payload.extend_from_slice(&[0u8; 16]);
        msg(super::NLMSG_ERROR, 0, seq, &payload)
    }
}

#[cfg(test)]
mod tests {
    use super::wire::*;
    use super::*;

    #[test]
    fn request_layout_matches_the_kernel_abi() {
        let req = build_request(
            GENL_ID_CTRL,
            NLM_F_REQUEST,
            7,
            CTRL_CMD_GETFAMILY,
            1,
            &[(CTRL_ATTR_FAMILY_NAME, b"nl80211\0")],
        );
        // 16 header + 4 genl + 4 attr header + 8 name = 32, already aligned.
        assert_eq!(req.len(), 32);
        assert_eq!(u32::from_ne_bytes(req[0..4].try_into().unwrap()), 32);
        assert_eq!(
            u16::from_ne_bytes(req[4..6].try_into().unwrap()),
            GENL_ID_CTRL
        );
        assert_eq!(
            u16::from_ne_bytes(req[6..8].try_into().unwrap()),
            NLM_F_REQUEST
        );
        assert_eq!(u32::from_ne_bytes(req[8..12].try_into().unwrap()), 7);
        assert_eq!(&req[16..20], &[CTRL_CMD_GETFAMILY, 1, 0, 0]);
        assert_eq!(u16::from_ne_bytes(req[20..22].try_into().unwrap()), 12);
        assert_eq!(&req[24..32], b"nl80211\0");
        // A 5-byte attribute is padded to 8.
        let odd = build_request(0x20, 0, 1, 5, 0, &[(3, &[1, 2, 3, 4, 5])]);
        assert_eq!(odd.len(), 16 + 4 + 12);
        let (_, attrs) = genl_attrs(parse_messages(&odd).unwrap()[0].payload).unwrap();
        assert_eq!(
            attrs,
            vec![Attr {
                kind: 3,
                data: &[1, 2, 3, 4, 5]
            }]
        );
    }

    /// A CTRL_CMD_NEWFAMILY reply as the kernel sends it for nl80211: name, id, version,
    /// header size, max attribute, then nested ops and multicast groups (not used).
    fn family_reply(seq: u32) -> Vec<u8> {
        genl_msg(
            GENL_ID_CTRL,
            0,
            seq,
            1,
            &[
                attr(CTRL_ATTR_FAMILY_NAME, b"nl80211\0"),
                attr(CTRL_ATTR_FAMILY_ID, &0x1cu16.to_ne_bytes()),
                attr(3, &1u32.to_ne_bytes()),
                attr(4, &0u32.to_ne_bytes()),
                attr(5, &0x13cu32.to_ne_bytes()),
                nested(
                    6,
                    &[nested(
                        1,
                        &[attr(1, &5u32.to_ne_bytes()), attr(2, &0xeu32.to_ne_bytes())],
                    )],
                ),
                nested(
                    7,
                    &[nested(
                        1,
                        &[attr(2, b"config\0"), attr(1, &5u32.to_ne_bytes())],
                    )],
                ),
            ],
        )
    }

    #[test]
    fn family_reply_gives_the_id() {
        let bytes = family_reply(9);
        let msgs = parse_messages(&bytes).unwrap();
        assert_eq!(msgs.len(), 1);
        assert_eq!(msgs[0].kind, GENL_ID_CTRL);
        assert_eq!(parse_family_id(msgs[0].payload), Ok(Some(0x1c)));
    }

    #[test]
    fn hostile_buffers_are_errors_not_panics() {
        let good = family_reply(1);
        // Cut inside the message: the declared length overruns the buffer.
        assert_eq!(
            parse_messages(&good[..good.len() - 3]),
            Err(NetlinkError::Truncated)
        );
        // Shorter than a header.
        assert_eq!(parse_messages(&good[..10]), Err(NetlinkError::Truncated));
        // A length smaller than the header itself.
        let mut bad = good.clone();
        bad[0..4].copy_from_slice(&8u32.to_ne_bytes());
        assert_eq!(parse_messages(&bad), Err(NetlinkError::BadLength));
        // An attribute with length 2.
        assert_eq!(parse_attrs(&[2, 0, 1, 0]), Err(NetlinkError::BadLength));
        // An attribute declaring more bytes than are there.
        assert_eq!(
            parse_attrs(&[40, 0, 1, 0, 1, 2]),
            Err(NetlinkError::Truncated)
        );
        // A family id of the wrong width.
        let wrong = genl_msg(
            GENL_ID_CTRL,
            0,
            1,
            1,
            &[attr(CTRL_ATTR_FAMILY_ID, &[1, 2, 3, 4])],
        );
        let msgs = parse_messages(&wrong).unwrap();
        assert_eq!(
            parse_family_id(msgs[0].payload),
            Err(NetlinkError::BadAttribute(CTRL_ATTR_FAMILY_ID))
        );
        // A genl payload shorter than its header.
        assert_eq!(genl_attrs(&[1, 2]), Err(NetlinkError::Truncated));
        assert_eq!(parse_messages(&[]), Ok(vec![]));
    }

    #[test]
    fn collector_follows_dumps_errors_and_sequence_numbers() {
        let mut c = ReplyCollector::default();
        let part = [
            genl_msg(0x1c, NLM_F_MULTI, 5, 7, &[attr(3, &2u32.to_ne_bytes())]),
            genl_msg(0x1c, NLM_F_MULTI, 4, 7, &[attr(3, &9u32.to_ne_bytes())]),
        ]
        .concat();
        c.take(&part, 5, true).unwrap();
        assert!(!c.done);
        c.take(
            &msg(NLMSG_DONE, NLM_F_MULTI, 5, &0u32.to_ne_bytes()),
            5,
            true,
        )
        .unwrap();
        assert!(c.done);
        assert_eq!(c.payloads.len(), 1, "the stale seq 4 reply is skipped");

        let mut c = ReplyCollector::default();
        assert_eq!(
            c.take(&error(3, -(Errno::ENOENT as i32)), 3, false),
            Err(NetlinkError::Kernel(Errno::ENOENT))
        );
        let mut c = ReplyCollector::default();
        c.take(&[family_reply(3), error(3, 0)].concat(), 3, false)
            .unwrap();
        assert!(c.done);
        assert_eq!(c.payloads.len(), 1);
        let mut c = ReplyCollector::default();
        assert_eq!(
            c.take(&msg(NLMSG_OVERRUN, 0, 1, &[]), 1, true),
            Err(NetlinkError::Overflow)
        );
    }

    #[test]
    fn live_controller_resolves_its_own_family() {
        // The controller family is always there; this proves the socket, the request
        // layout and the reply parsing against the running kernel.
        let mut sock = GenlSocket::open().expect("a generic netlink socket opens here");
        assert_eq!(sock.family_id("nlctrl"), Ok(Some(GENL_ID_CTRL)));
        // An unknown name (at most 15 bytes, or the kernel answers EINVAL) is absent, and
        // the acknowledgement of the first request is skipped by sequence number.
        assert_eq!(sock.family_id("assent-nofam"), Ok(None));
        assert_eq!(sock.family_id("nlctrl"), Ok(Some(GENL_ID_CTRL)));
    }
}
