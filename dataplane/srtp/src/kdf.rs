//! Session key derivation: the AES-CM PRF of RFC 3711 section 4.3, with key derivation rate 0.

use aes::cipher::{KeyIvInit, StreamCipher};
use zeroize::Zeroize;

use crate::MasterKey;

/// Key derivation labels (RFC 3711 section 4.3.2).
#[derive(Clone, Copy)]
#[repr(u8)]
pub(crate) enum Label {
    RtpEncryption = 0x00,
    RtpAuth = 0x01,
    RtpSalt = 0x02,
    RtcpEncryption = 0x03,
    RtcpAuth = 0x04,
    RtcpSalt = 0x05,
}

//= https://www.rfc-editor.org/rfc/rfc3711#section-4.3.1
//# Let "a DIV t" denote integer division of a by t, rounded down, and with
//# the convention that "a DIV 0 = 0" for all a.
//  With KDR 0, r = index DIV key_derivation_rate = 0, so key_id = label || 0^48 and
//  x = key_id XOR master_salt.
/// Fills `out` with the PRF output for `label`: AES-CM keystream under the master key with
/// IV = (master_salt XOR (label << 48)) << 16. A 96-bit GCM master salt is padded with zeros
/// to 112 bits first (RFC 7714 section 11, as libsrtp does).
pub(crate) fn derive(master: &MasterKey, label: Label, out: &mut [u8]) {
    let mut iv = [0u8; 16];
    iv[..master.salt().len()].copy_from_slice(master.salt());
    iv[7] ^= label as u8;
    out.fill(0);
    match master.key().len() {
        16 => ctr::Ctr128BE::<aes::Aes128>::new(master.key().into(), (&iv).into())
            .apply_keystream(out),
        _ => ctr::Ctr128BE::<aes::Aes256>::new(master.key().into(), (&iv).into())
            .apply_keystream(out),
    }
    iv.zeroize();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::hex;
    use crate::Suite;

    fn derived(master: &MasterKey, label: Label, len: usize) -> Vec<u8> {
        let mut out = vec![0u8; len];
        derive(master, label, &mut out);
        out
    }

    #[test]
    fn rfc3711_b3_key_derivation() {
        //= https://www.rfc-editor.org/rfc/rfc3711#appendix-B.3
        //= type=test
        //# master key:     E1F97A0D3E018BE0D64FA32C06DE4139
        //# master salt:    0EC675AD498AFEEBB6960B3AABE6
        let mk = MasterKey::new(
            Suite::AesCm128HmacSha1_80,
            &hex("E1F97A0D3E018BE0D64FA32C06DE4139"),
            &hex("0EC675AD498AFEEBB6960B3AABE6"),
        )
        .unwrap();
        assert_eq!(
            derived(&mk, Label::RtpEncryption, 16),
            hex("C61E7A93744F39EE10734AFE3FF7A087")
        );
        assert_eq!(
            derived(&mk, Label::RtpSalt, 14),
            hex("30CBBC08863D8C85D49DB34A9AE1")
        );
        // The appendix lists 94 octets of authentication key; the first 20 are used.
        assert_eq!(
            derived(&mk, Label::RtpAuth, 94),
            hex(
                "CEBE321F6FF7716B6FD4AB49AF256A15 6D38BAA48F0A0ACF3C34E2359E6CDBCE
                 E049646C43D9327AD175578EF7227098 6371C10C9A369AC2F94A8C5FBCDDDC25
                 6D6E919A48B610EF17C2041E47403576 6B68642C59BBFC2F34DB60DBDFB2"
            )
        );
    }

    #[test]
    fn rfc6188_7_2_aes_256_key_derivation() {
        //= https://www.rfc-editor.org/rfc/rfc6188#section-7.2
        //= type=test
        //# master key: f0f04914b513f2763a1b1fa130f10e29
        //#             98f6f6e43e4309d1e622a0e332b9f1b6
        //# master salt: 3b04803de51ee7c96423ab5b78d2
        let mk = MasterKey::new(
            Suite::AesCm256HmacSha1_80,
            &hex("f0f04914b513f2763a1b1fa130f10e2998f6f6e43e4309d1e622a0e332b9f1b6"),
            &hex("3b04803de51ee7c96423ab5b78d2"),
        )
        .unwrap();
        assert_eq!(
            derived(&mk, Label::RtpEncryption, 32),
            hex("5ba1064e30ec51613cad926c5a28ef731ec7fb397f70a960653caf06554cd8c4")
        );
        assert_eq!(
            derived(&mk, Label::RtpSalt, 14),
            hex("fa31791685ca444a9e07c6c64e93")
        );
        assert_eq!(
            derived(&mk, Label::RtpAuth, 20),
            hex("fd9c32d39ed5fbb5a9dc96b30818454d1313dc05")
        );
    }
}
