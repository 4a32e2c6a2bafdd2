//! SHA-256 digests, domain-separated digest building, and Merkle roots.

use bastion_crypto::{merkle_root, sha256, Digest, DigestBuilder};

fn leaf(d: &Digest) -> Digest {
    DigestBuilder::new("bastion/merkle/leaf/v1").digest(d).finish()
}

fn node(left: &Digest, right: &Digest) -> Digest {
    DigestBuilder::new("bastion/merkle/node/v1").digest(left).digest(right).finish()
}

fn leaves(n: usize) -> Vec<Digest> {
    (0..n as u64).map(|i| sha256(&i.to_le_bytes())).collect()
}

#[test]
fn sha256_known_answers() {
    // FIPS 180-2 examples.
    assert_eq!(sha256(b"").to_hex(), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    assert_eq!(sha256(b"abc").to_hex(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    assert_eq!(
        sha256(b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq").to_hex(),
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
    );
    assert_eq!(
        sha256(&vec![b'a'; 1_000_000]).to_hex(),
        "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"
    );
}

#[test]
fn digest_builder_is_domain_separated_and_unambiguous() {
    let a = DigestBuilder::new("bastion/a/v1").bytes(b"x").finish();
    let b = DigestBuilder::new("bastion/b/v1").bytes(b"x").finish();
    assert_ne!(a, b);
    // The tag is length-prefixed: moving a byte from the tag into the data changes the digest.
    assert_ne!(DigestBuilder::new("ab").bytes(b"c").finish(), DigestBuilder::new("a").bytes(b"bc").finish());
    // var_bytes is length-prefixed: ("ab", "c") and ("a", "bc") differ.
    let split1 = DigestBuilder::new("t").var_bytes(b"ab").var_bytes(b"c").finish();
    let split2 = DigestBuilder::new("t").var_bytes(b"a").var_bytes(b"bc").finish();
    assert_ne!(split1, split2);
    // The builder is plain SHA-256 over len(tag) || tag || data.
    let mut manual = vec![1u8, b't'];
    manual.extend_from_slice(&7u64.to_le_bytes());
    assert_eq!(DigestBuilder::new("t").u64(7).finish(), sha256(&manual));
}

#[test]
fn empty_and_single_leaf_roots() {
    assert_eq!(merkle_root(&[]), DigestBuilder::new("bastion/merkle/empty/v1").finish());
    assert_ne!(merkle_root(&[]), Digest::ZERO);
    let d = sha256(b"x");
    // A single leaf is still hashed as a leaf: the root is never a raw leaf value.
    assert_eq!(merkle_root(&[d]), leaf(&d));
    assert_ne!(merkle_root(&[d]), d);
    assert_ne!(merkle_root(&[Digest::ZERO]), merkle_root(&[]));
}

#[test]
fn roots_follow_the_documented_shape() {
    let l = leaves(5);
    let h: Vec<Digest> = l.iter().map(leaf).collect();
    assert_eq!(merkle_root(&l[..2]), node(&h[0], &h[1]));
    // An odd node at the end of a level is promoted unchanged.
    assert_eq!(merkle_root(&l[..3]), node(&node(&h[0], &h[1]), &h[2]));
    assert_eq!(merkle_root(&l[..4]), node(&node(&h[0], &h[1]), &node(&h[2], &h[3])));
    assert_eq!(merkle_root(&l), node(&node(&node(&h[0], &h[1]), &node(&h[2], &h[3])), &h[4]));
}

#[test]
fn every_leaf_and_the_order_matter() {
    for n in 1..40 {
        let l = leaves(n);
        let root = merkle_root(&l);
        assert_eq!(merkle_root(&l), root, "deterministic");
        for i in 0..n {
            let mut changed = l.clone();
            changed[i].0[31] ^= 1;
            assert_ne!(merkle_root(&changed), root, "n {n}, leaf {i}");
        }
        if n > 1 {
            let mut swapped = l.clone();
            swapped.swap(0, n - 1);
            assert_ne!(merkle_root(&swapped), root, "n {n}");
        }
        // Appending a leaf changes the root (no duplication-of-last-node ambiguity).
        let mut longer = l.clone();
        longer.push(*l.last().expect("n >= 1"));
        assert_ne!(merkle_root(&longer), root, "n {n}");
    }
}

#[test]
fn inner_node_cannot_pose_as_a_leaf() {
    let l = leaves(2);
    let inner = node(&leaf(&l[0]), &leaf(&l[1]));
    assert_eq!(merkle_root(&l), inner);
    assert_ne!(merkle_root(&[inner]), merkle_root(&l));
}

#[test]
fn digest_text_round_trips() {
    let d = sha256(b"round trip");
    assert_eq!(d.to_string().parse::<Digest>().expect("parse"), d);
    assert_eq!(Digest::from_hex(&format!("0x{}", d.to_hex())).expect("parse"), d);
    assert_eq!(format!("{d:?}"), d.to_hex()[..12]);
}
