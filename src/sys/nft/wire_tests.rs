use super::*;

/// (length, type, flags, seq) of each message in a buffer.
fn headers(buf: &[u8]) -> Vec<(u32, u16, u16, u32)> {
    let mut out = vec![];
    let mut at = 0;
    while at < buf.len() {
        let u32_at = |i: usize| u32::from_ne_bytes(buf[at + i..at + i + 4].try_into().unwrap());
        let u16_at = |i: usize| u16::from_ne_bytes(buf[at + i..at + i + 2].try_into().unwrap());
        out.push((u32_at(0), u16_at(4), u16_at(6), u32_at(8)));
        at += (u32_at(0) as usize).next_multiple_of(4);
    }
    out
}

#[test]
fn a_batch_is_framed_and_numbered_from_one() {
    let mut batch = Batch::new();
    batch.add_table(NfFamily::Inet, "t");
    batch.delete_chain(NfFamily::Inet, "t", "c");
    let buf = batch.finish();
    let kinds: Vec<(u16, u16, u32)> = headers(&buf).iter().map(|h| (h.1, h.2, h.3)).collect();
    // begin, NEWTABLE, DELCHAIN, end; every one REQUEST|ACK.
    assert_eq!(
        kinds,
        [(0x10, 5, 1), (0x0a00, 5, 2), (0x0a05, 5, 3), (0x11, 5, 4)]
    );
    assert_eq!(
        headers(&buf).iter().map(|h| h.0 as usize).sum::<usize>(),
        buf.len()
    );
    // The begin message names the nf_tables subsystem, big-endian.
    assert_eq!(&buf[16..20], &[0, 0, 0, 10]);
}

#[test]
fn strings_end_in_nul_and_attributes_are_padded_to_four_bytes() {
    let mut w = Writer::default();
    w.string(3, "vif3.0");
    assert_eq!(
        w.buf,
        [11, 0, 3, 0, b'v', b'i', b'f', b'3', b'.', b'0', 0, 0]
    );
}

#[test]
fn nests_carry_the_nested_flag_and_their_whole_length() {
    let mut w = Writer::default();
    w.nest(4, |w| w.be32(1, 0x0102_0304));
    assert_eq!(w.buf, [12, 0, 4, 0x80, 8, 0, 1, 0, 1, 2, 3, 4]);
}

#[test]
fn rules_append_and_refuse_duplicates_chains_create() {
    let mut batch = Batch::new();
    batch.add_chain(NfFamily::NetDev, "t", "c", None, None);
    batch.add_rule(NfFamily::NetDev, "t", "c", &[Expr::Verdict(Verdict::Drop)]);
    let flags: Vec<u16> = headers(&batch.finish()).iter().map(|h| h.2).collect();
    // NLM_F_CREATE for the chain; CREATE|APPEND|EXCL for the rule.
    assert_eq!(flags, [5, 0x405, 0xe05, 5]);
}
