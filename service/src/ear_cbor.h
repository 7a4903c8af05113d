// The CBOR form of EAR claims (draft-ietf-rats-ear §5, CBOR keys as rust-ear uses them) and the
// COSE_Sign1 structures (RFC 9052 §4.2, §4.4) around it, private to the service.
#pragma once

#include "cloister/common/bytes.h"
#include "cloister/common/result.h"
#include "cloister/service/ear.h"

namespace cloister::service::ear::cbor {

// Deterministically encoded (RFC 8949 §4.2.1) claims. JSON extension members (the claims' and
// each appraisal's) travel under their names as text keys (RFC 8392 §3: a claim key is an
// integer or a text string), their values converted to CBOR. Fails for key attestations, which
// the CBOR form has no key for.
Result<Bytes> claims_to_cbor(const Claims& claims);
// The inverse; errors name the claim key. Unknown integer keys are refused; text keys become
// extensions, except those naming a claim that has an integer key, and values JSON cannot
// carry (byte strings, tags, undefined, invalid UTF-8).
Result<Claims> claims_from_cbor(ByteView cbor);

// The protected header of an ES384 COSE_Sign1: bstr-wrapped {1: -35}.
Bytes es384_protected_header();
// Sig_structure = ["Signature1", protected, h'', payload] (RFC 9052 §4.4).
Result<Bytes> sig_structure(ByteView protected_header, ByteView payload);
// Tag 18 [protected, {4: kid}, payload, signature].
Result<Bytes> cose_sign1(ByteView protected_header, std::string_view kid, ByteView payload,
                         ByteView signature);

struct CoseSign1 {
  Bytes protected_header;  // the bstr's content
  std::string kid;
  Bytes payload;
  Bytes signature;
};
// Parses a tagged COSE_Sign1 whose protected header is exactly {1: -35} (ES384) and whose
// unprotected header carries a kid (4).
Result<CoseSign1> parse_cose_sign1(ByteView bytes);

}  // namespace cloister::service::ear::cbor
