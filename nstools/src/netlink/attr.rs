//! Building and reading netlink attributes.

use neli::consts::rtnl::RtaType;
use neli::rtnl::{Rtattr, RtattrBuilder};
use neli::types::{Buffer, RtBuffer};
use neli::{Size, ToBytes};

/// An attribute with a payload (a number, bytes, or a whole message such as a veth peer's
/// `Ifinfomsg`).
pub(crate) fn attr<T: RtaType, P: Size + ToBytes>(ty: T, payload: P) -> Rtattr<T, Buffer> {
    RtattrBuilder::default().rta_type(ty).rta_payload(payload).build().expect("type and payload are both set")
}

/// A string attribute, NUL-terminated as the kernel's `NLA_STRING` policy expects.
pub(crate) fn string<T: RtaType>(ty: T, s: &str) -> Rtattr<T, Buffer> {
    let mut bytes = Vec::with_capacity(s.len() + 1);
    bytes.extend_from_slice(s.as_bytes());
    bytes.push(0);
    attr(ty, Buffer::from(bytes))
}

/// A nested attribute holding `children`.
pub(crate) fn nest<T: RtaType, C: RtaType>(ty: T, children: &[Rtattr<C, Buffer>]) -> Rtattr<T, Buffer> {
    children
        .iter()
        .try_fold(attr(ty, Buffer::new()), |parent, child| parent.nest(child))
        .expect("serialising into memory cannot fail")
}

/// The payload bytes of the first attribute of type `ty`.
pub(crate) fn find<T: RtaType>(attrs: &RtBuffer<T, Buffer>, ty: T) -> Option<&[u8]> {
    attrs.iter().find(|a| *a.rta_type() == ty).map(|a| a.rta_payload().as_ref())
}

/// A string payload, up to its NUL.
pub(crate) fn c_string(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

/// A native-endian u32 payload.
pub(crate) fn u32_of(bytes: &[u8]) -> Option<u32> {
    Some(u32::from_ne_bytes(bytes.get(..4)?.try_into().ok()?))
}

/// A native-endian i32 payload.
pub(crate) fn i32_of(bytes: &[u8]) -> Option<i32> {
    Some(i32::from_ne_bytes(bytes.get(..4)?.try_into().ok()?))
}

/// Parse nested attributes.
pub(crate) fn nested<T: RtaType>(bytes: &[u8]) -> Option<RtBuffer<T, Buffer>> {
    use neli::FromBytesWithInput;
    RtBuffer::from_bytes_with_input(&mut std::io::Cursor::new(bytes), bytes.len()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use neli::consts::rtnl::{Ifla, IflaInfo};

    #[test]
    fn string_attributes_are_nul_terminated() {
        let a = string(Ifla::Ifname, "veth21");
        assert_eq!(a.rta_payload().as_ref(), b"veth21\0");
        assert_eq!(*a.rta_len() as usize, 4 + 7);
        assert_eq!(c_string(a.rta_payload().as_ref()), "veth21");
    }

    #[test]
    fn nesting_round_trips() {
        let info = nest(Ifla::Linkinfo, &[string(IflaInfo::Kind, "veth")]);
        let inner = nested::<IflaInfo>(info.rta_payload().as_ref()).unwrap();
        assert_eq!(find(&inner, IflaInfo::Kind).map(c_string), Some("veth".into()));
        assert_eq!(u32_of(&7u32.to_ne_bytes()), Some(7));
        assert_eq!(i32_of(&(-1i32).to_ne_bytes()), Some(-1));
        assert_eq!(u32_of(&[1, 2]), None);
    }
}
