//! A character-level tokenizer built with the `tokenizers` crate, for the built-in demo model.
//!
//! Vocabulary: `<pad>`, `<eos>`, `<unk>` (ids 0–2), then newline and printable ASCII
//! (`' '..='~'`), one token per character. It is a BPE model with no merges plus a `Fuse`
//! decoder, so it saves and loads as an ordinary `tokenizer.json`.

use tokenizers::decoders::fuse::Fuse;
use tokenizers::models::bpe::{BPE, Vocab};
use tokenizers::{AddedToken, Tokenizer};

/// Padding id.
pub const PAD_ID: u32 = 0;
/// End-of-sequence id.
pub const EOS_ID: u32 = 1;
const SPECIALS: [&str; 3] = ["<pad>", "<eos>", "<unk>"];

/// Errors from building or using the tokenizer.
#[derive(Debug, thiserror::Error)]
pub enum TokenizerError {
    /// The `tokenizers` crate failed.
    #[error("tokenizer: {0}")]
    Backend(String),
}

/// A loaded tokenizer and its special ids.
#[derive(Debug, Clone)]
pub struct CharTokenizer {
    inner: Tokenizer,
}

impl CharTokenizer {
    /// Builds the character vocabulary.
    pub fn new() -> Result<Self, TokenizerError> {
        let vocab: Vocab = SPECIALS
            .iter()
            .map(|s| (*s).to_string())
            .chain(std::iter::once('\n').chain(' '..='~').map(String::from))
            .enumerate()
            .map(|(id, token)| (token, id as u32))
            .collect();
        let bpe = BPE::builder()
            .vocab_and_merges(vocab, vec![])
            .unk_token("<unk>".to_string())
            .build()
            .map_err(|e| TokenizerError::Backend(e.to_string()))?;
        let mut inner = Tokenizer::new(bpe);
        inner.with_decoder(Some(Fuse::new()));
        let specials: Vec<AddedToken> = SPECIALS
            .iter()
            .map(|s| AddedToken::from(*s, true))
            .collect();
        inner
            .add_special_tokens(specials)
            .map_err(|e| TokenizerError::Backend(e.to_string()))?;
        Ok(CharTokenizer { inner })
    }

    /// Number of ids.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// Text → ids, no special tokens added.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, TokenizerError> {
        let enc = self
            .inner
            .encode(text, false)
            .map_err(|e| TokenizerError::Backend(e.to_string()))?;
        Ok(enc.get_ids().to_vec())
    }

    /// Ids → text, special tokens skipped.
    pub fn decode(&self, ids: &[u32]) -> Result<String, TokenizerError> {
        self.inner
            .decode(ids, true)
            .map_err(|e| TokenizerError::Backend(e.to_string()))
    }

    /// The underlying `tokenizers::Tokenizer` (e.g. to save `tokenizer.json`).
    pub fn inner(&self) -> &Tokenizer {
        &self.inner
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_ids_are_stable() {
        let t = CharTokenizer::new().unwrap();
        assert_eq!(t.vocab_size(), 3 + 1 + 95);
        let text = "12+7=\\boxed{19}\n";
        let ids = t.encode(text).unwrap();
        assert_eq!(ids.len(), text.len());
        assert_eq!(t.decode(&ids).unwrap(), text);
        let mut with_eos = ids.clone();
        with_eos.push(EOS_ID);
        with_eos.push(PAD_ID);
        assert_eq!(t.decode(&with_eos).unwrap(), text);
        assert_eq!(t.encode(" ").unwrap(), vec![4]);
    }

    #[test]
    fn unknown_characters_map_to_unk() {
        let t = CharTokenizer::new().unwrap();
        assert_eq!(t.encode("é").unwrap(), vec![2]);
    }
}
