//! Tokenizers for records.
//!
//! The *field* tokenizer makes every field name (with its `=`) one token, every
//! categorical value one token, and writes numbers one character at a time (digits, `.`,
//! `-`), with the space between fields a token of its own.  It is a `WordLevel` model
//! behind a regex pre-tokenizer; a categorical value made of digits (a port class, say)
//! stays one token because the pattern only takes it whole right after its field's name.
//! The *BPE* tokenizer is an ordinary byte-pair encoding trained on record texts, whose
//! tokens may span field boundaries; enforcement handles both.
//!
//! Both are written as `tokenizer.json` with the special tokens `<s>` (0), `</s>` (1),
//! `<unk>` (2), `<pad>` (3) and a decoder that concatenates tokens (`ByteFallback`, then
//! `Fuse`), as mistral.rs needs.

use std::collections::BTreeSet;

use rulepacks::record::{RecordFormat, Spelling};
use serde_json::{Value as Json, json};
use tokenizers::Tokenizer;

pub const BOS: &str = "<s>";
pub const EOS: &str = "</s>";
pub const UNK: &str = "<unk>";
pub const PAD: &str = "<pad>";
pub const SPECIALS: [&str; 4] = [BOS, EOS, UNK, PAD];

/// A tokenizer that does not build.
#[derive(Debug, thiserror::Error)]
#[error("tokenizer: {0}")]
pub struct VocabError(pub String);

fn special_tokens() -> Json {
    Json::Array(
        SPECIALS
            .iter()
            .enumerate()
            .map(|(id, t)| {
                json!({"id": id, "content": t, "single_word": false, "lstrip": false, "rstrip": false,
                       "normalized": false, "special": true})
            })
            .collect(),
    )
}

fn decoder() -> Json {
    json!({"type": "Sequence", "decoders": [{"type": "ByteFallback"}, {"type": "Fuse"}]})
}

/// The field tokenizer of a record format.
pub fn field_tokenizer(format: &RecordFormat) -> Result<Tokenizer, VocabError> {
    let mut tokens: Vec<String> = SPECIALS.iter().map(|s| (*s).to_owned()).collect();
    let mut seen: BTreeSet<String> = tokens.iter().cloned().collect();
    let mut push = |t: String, tokens: &mut Vec<String>| {
        if seen.insert(t.clone()) {
            tokens.push(t);
        }
    };
    let mut after_name = Vec::new();
    let mut names = Vec::new();
    for slot in format.slots() {
        let name = format!("{}=", slot.name);
        push(name.clone(), &mut tokens);
        names.push(regex::escape(&name));
        if let Spelling::Choice(choices) = &slot.spelling {
            let mut texts: Vec<&str> = choices.iter().map(|(t, _)| t.as_str()).collect();
            for t in &texts {
                push((*t).to_owned(), &mut tokens);
            }
            texts.sort_by_key(|t| std::cmp::Reverse(t.len()));
            let alternatives: Vec<String> = texts.iter().map(|t| regex::escape(t)).collect();
            after_name.push(format!(
                "(?<={})(?:{})",
                regex::escape(&name),
                alternatives.join("|")
            ));
        }
    }
    for c in "0123456789.- ".chars() {
        push(c.to_string(), &mut tokens);
    }
    names.sort_by_key(|n| std::cmp::Reverse(n.len()));
    let mut pattern: Vec<String> = after_name;
    pattern.extend(names);
    pattern.push(r"[0-9.\- ]|.".into());
    let vocab: serde_json::Map<String, Json> = tokens
        .iter()
        .enumerate()
        .map(|(i, t)| (t.clone(), json!(i)))
        .collect();
    let spec = json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": special_tokens(),
        "normalizer": null,
        "pre_tokenizer": {"type": "Split", "pattern": {"Regex": pattern.join("|")}, "behavior": "Isolated", "invert": false},
        "post_processor": null,
        "decoder": decoder(),
        "model": {"type": "WordLevel", "vocab": vocab, "unk_token": UNK},
    });
    spec.to_string()
        .parse::<Tokenizer>()
        .map_err(|e| VocabError(e.to_string()))
}

/// A BPE tokenizer trained on record texts, with about `size` tokens.
pub fn bpe_tokenizer(records: &[String], size: usize) -> Result<Tokenizer, VocabError> {
    use tokenizers::models::TrainerWrapper;
    use tokenizers::models::bpe::{BPE, BpeTrainerBuilder};
    let specials: Vec<tokenizers::AddedToken> = SPECIALS
        .iter()
        .map(|s| tokenizers::AddedToken::from((*s).to_owned(), true))
        .collect();
    let mut trainer: TrainerWrapper = BpeTrainerBuilder::new()
        .vocab_size(size)
        .min_frequency(2)
        .show_progress(false)
        .special_tokens(specials)
        .build()
        .into();
    let model = BPE::builder()
        .unk_token(UNK.into())
        .build()
        .map_err(|e| VocabError(e.to_string()))?;
    let mut tokenizer = Tokenizer::new(model);
    tokenizer
        .train(&mut trainer, records.iter())
        .map_err(|e| VocabError(e.to_string()))?;
    // Rebuild through JSON so that the decoder is the concatenating one.
    let mut spec: Json = serde_json::from_str(
        &tokenizer
            .to_string(false)
            .map_err(|e| VocabError(e.to_string()))?,
    )
    .map_err(|e| VocabError(e.to_string()))?;
    spec["decoder"] = decoder();
    spec.to_string()
        .parse::<Tokenizer>()
        .map_err(|e| VocabError(e.to_string()))
}

/// The ids of `text` with `<s>` first and `</s>` last.
pub fn encode_record(tokenizer: &Tokenizer, text: &str) -> Result<Vec<u32>, VocabError> {
    let enc = tokenizer
        .encode(text, false)
        .map_err(|e| VocabError(e.to_string()))?;
    let unk = tokenizer.token_to_id(UNK);
    if let Some(pos) = enc.get_ids().iter().position(|id| Some(*id) == unk) {
        let (start, end) = enc.get_offsets().get(pos).copied().unwrap_or_default();
        let piece = text.get(start..end).unwrap_or_default();
        return Err(VocabError(format!("`{piece}` in `{text}` has no token")));
    }
    let mut ids = Vec::with_capacity(enc.len() + 2);
    ids.push(0);
    ids.extend_from_slice(enc.get_ids());
    ids.push(1);
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rulepacks::Value;
    use rulepacks::schema::{Category, Domain, Field, Schema, ValueType};

    fn format() -> RecordFormat {
        let f = Field::plain;
        let ports = Domain::Categorical {
            values: [53, 443, 60000]
                .iter()
                .map(|p| Category {
                    value: Value::Int(*p),
                    label: (*p == 60000).then(|| "unknown_port".into()),
                })
                .collect(),
        };
        RecordFormat::new(
            &Schema::new(vec![
                f(
                    "Duration",
                    ValueType::Real,
                    Domain::Real {
                        min: 0.0,
                        max: 9.0,
                        decimals: Some(3),
                    },
                ),
                f("SrcPt", ValueType::Categorical, ports),
                f(
                    "Bytes",
                    ValueType::Integer,
                    Domain::Integer {
                        min: 0,
                        max: 99999,
                        multiple_of: None,
                    },
                ),
            ])
            .unwrap(),
        )
        .unwrap()
    }

    #[test]
    fn names_and_choices_are_whole_tokens_and_numbers_are_digits() {
        let t = field_tokenizer(&format()).unwrap();
        let text = "Duration=0.004 SrcPt=443 Bytes=443";
        let enc = t.encode(text, false).unwrap();
        let pieces: Vec<&str> = enc.get_tokens().iter().map(String::as_str).collect();
        assert_eq!(
            pieces,
            [
                "Duration=",
                "0",
                ".",
                "0",
                "0",
                "4",
                " ",
                "SrcPt=",
                "443",
                " ",
                "Bytes=",
                "4",
                "4",
                "3"
            ]
        );
        assert_eq!(t.decode(enc.get_ids(), false).unwrap(), text);
        let ids = encode_record(&t, text).unwrap();
        assert_eq!((ids[0], *ids.last().unwrap()), (0, 1));
        let err = encode_record(&t, "Duration=x").unwrap_err().0;
        assert!(err.contains("`x`"), "{err}");
    }

    #[test]
    fn bpe_round_trips_records() {
        let records: Vec<String> = (0..200)
            .map(|i| format!("Duration=0.{:03} SrcPt=443 Bytes={}", i % 7, i * 13))
            .collect();
        let t = bpe_tokenizer(&records, 120).unwrap();
        let enc = t.encode(records[5].as_str(), false).unwrap();
        assert_eq!(t.decode(enc.get_ids(), false).unwrap(), records[5]);
        assert!(enc.len() < records[5].len(), "BPE merges characters");
    }
}
