//! [`TextTokenizer`]: a `tokenizers` tokenizer with its end-of-sequence id and, for chat
//! models, the chat template prompts are rendered through.
//!
//! Two sources: the built-in character-level vocabulary of the random-init models
//! ([`TextTokenizer::char_level`]: `<pad>`, `<eos>`, `<unk>` (ids 0–2), then newline and
//! printable ASCII, one token per character; a BPE model with no merges plus a `Fuse` decoder,
//! so it saves and loads as an ordinary `tokenizer.json`), and a pretrained model's tokenizer
//! (e.g. read from a GGUF file by [`crate::model::gguf`]).

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

/// One chat message of a prompt (`{"role", "content"}`, as in verl's and OpenAI's schema).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ChatMessage {
    /// `system`, `user`, `assistant`, ... (passed to the template as written).
    pub role: String,
    /// The text.
    pub content: String,
}

impl ChatMessage {
    /// A user message.
    pub fn user(content: &str) -> Self {
        ChatMessage {
            role: "user".into(),
            content: content.into(),
        }
    }

    /// The messages' contents joined by newlines, roles dropped: a conversation as plain text.
    pub fn joined(messages: &[ChatMessage]) -> String {
        messages
            .iter()
            .map(|m| m.content.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// A loaded tokenizer, its end-of-sequence id and optional chat template.
#[derive(Debug, Clone)]
pub struct TextTokenizer {
    inner: Tokenizer,
    eos_id: u32,
    chat_template: Option<String>,
}

impl TextTokenizer {
    /// A pretrained tokenizer. `eos_id` ends a response (for instruct models the end-of-turn
    /// token); `chat_template` (Jinja, as in `tokenizer_config.json` or GGUF metadata) renders
    /// each prompt as one user message, with the generation prompt appended.
    pub fn new(inner: Tokenizer, eos_id: u32, chat_template: Option<String>) -> Self {
        TextTokenizer {
            inner,
            eos_id,
            chat_template,
        }
    }

    /// The end-of-sequence id.
    pub fn eos_id(&self) -> u32 {
        self.eos_id
    }

    /// The chat template (Jinja), if the model has one.
    pub fn chat_template(&self) -> Option<&str> {
        self.chat_template.as_deref()
    }

    /// The text the model is prompted with: `user` rendered through the chat template as one
    /// user message (with `add_generation_prompt`), or `user` itself without a template.
    pub fn prompt_text(&self, user: &str) -> Result<String, TokenizerError> {
        self.chat_text(&[ChatMessage::user(user)])
    }

    /// The text the model is prompted with for a conversation: the messages, roles kept,
    /// rendered through the chat template (with `add_generation_prompt`); without a template,
    /// their contents joined by newlines.
    pub fn chat_text(&self, messages: &[ChatMessage]) -> Result<String, TokenizerError> {
        let Some(template) = &self.chat_template else {
            return Ok(ChatMessage::joined(messages));
        };
        let eos = self.inner.id_to_token(self.eos_id).unwrap_or_default();
        let mut env = minijinja::Environment::new();
        env.add_function(
            "raise_exception",
            |msg: String| -> Result<String, minijinja::Error> {
                Err(minijinja::Error::new(
                    minijinja::ErrorKind::InvalidOperation,
                    msg,
                ))
            },
        );
        env.render_str(
            template,
            minijinja::context! {
                messages => messages
                    .iter()
                    .map(|m| minijinja::context! { role => m.role, content => m.content })
                    .collect::<Vec<_>>(),
                add_generation_prompt => true,
                eos_token => eos,
            },
        )
        .map_err(|e| TokenizerError::Backend(format!("chat template: {e}")))
    }

    /// Builds the character vocabulary of the built-in models.
    pub fn char_level() -> Result<Self, TokenizerError> {
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
        Ok(TextTokenizer {
            inner,
            eos_id: EOS_ID,
            chat_template: None,
        })
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
        let t = TextTokenizer::char_level().unwrap();
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
    fn chat_templates_render_prompts_and_conversations() {
        let chatml = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nBe brief<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";
        let base = TextTokenizer::char_level().unwrap();
        assert_eq!(base.prompt_text("2+2=").unwrap(), "2+2=");
        let chat = TextTokenizer::new(base.inner().clone(), EOS_ID, Some(chatml.into()));
        assert_eq!(
            chat.prompt_text("What is 2+2?").unwrap(),
            "<|im_start|>system\nBe brief<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n"
        );
        // A conversation keeps its roles: the row's own system message replaces the default.
        let convo = [
            ChatMessage {
                role: "system".into(),
                content: "Answer in words".into(),
            },
            ChatMessage::user("What is 2+2?"),
        ];
        assert_eq!(
            chat.chat_text(&convo).unwrap(),
            "<|im_start|>system\nAnswer in words<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n"
        );
        assert_eq!(
            base.chat_text(&convo).unwrap(),
            "Answer in words\nWhat is 2+2?"
        );
        let broken = TextTokenizer::new(
            base.inner().clone(),
            EOS_ID,
            Some("{{ raise_exception('no system role') }}".into()),
        );
        let e = broken.prompt_text("x").unwrap_err().to_string();
        assert!(e.contains("no system role"), "{e}");
    }

    #[test]
    fn unknown_characters_map_to_unk() {
        let t = TextTokenizer::char_level().unwrap();
        assert_eq!(t.encode("é").unwrap(), vec![2]);
    }
}
