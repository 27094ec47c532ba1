"""The PyTorch + transformers side of `cargo bench -p trainer --bench vs_pytorch`.

Loads the same GGUF file (transformers dequantizes it to f32), then measures on CPU, with the
same prompt ids and shapes as the Rust side:
  * generation: G sequences of N new tokens at temperature 0.7 with the KV cache
    (`min_new_tokens = max_new_tokens = N`, so EOS cannot end a row early);
  * a GRPO train step on B rows of P + N tokens: a no-grad scoring pass (log-probs and
    full-vocabulary entropy, as verl's compute_log_prob), the policy forward, the clipped
    token-mean loss (eps 0.2 / 0.28), backward and torch.optim.AdamW. Both forwards compute
    logits for the N response positions only (`logits_to_keep`, as TRL's GRPO trainer does).
Prints one JSON line.
"""
import argparse
import json
import os
import statistics
import time

import torch
import transformers
from transformers import AutoModelForCausalLM


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--gguf", required=True)
    ap.add_argument("--prompt-ids", required=True, help="comma-separated token ids")
    ap.add_argument("--g", type=int, default=8)
    ap.add_argument("--new", type=int, default=64)
    ap.add_argument("--b", type=int, default=16)
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    threads = os.cpu_count() or 1
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(
        os.path.dirname(a.gguf), gguf_file=os.path.basename(a.gguf), dtype=torch.float32
    )
    prompt = torch.tensor([[int(x) for x in a.prompt_ids.split(",")]])
    p = prompt.shape[1]

    model.eval()
    gen = []
    with torch.no_grad():
        for _ in range(a.repeat):
            t = time.perf_counter()
            out = model.generate(
                prompt.repeat(a.g, 1),
                attention_mask=torch.ones(a.g, p, dtype=torch.long),
                do_sample=True,
                temperature=0.7,
                top_p=1.0,
                top_k=0,
                max_new_tokens=a.new,
                min_new_tokens=a.new,
                use_cache=True,
                pad_token_id=0,
            )
            gen.append(time.perf_counter() - t)
            assert out.shape == (a.g, p + a.new), out.shape

    model.train()
    vocab = model.config.vocab_size
    ids = torch.cat([prompt.repeat(a.b, 1), torch.randint(0, vocab, (a.b, a.new))], dim=1)
    # The last N targets are the response tokens; only their logits are computed.
    inputs, targets = ids[:, :-1], ids[:, -a.new :]
    mask = torch.ones_like(targets, dtype=torch.float32)
    adv = torch.tensor([1.0 if i % 2 == 0 else -1.0 for i in range(a.b)]).unsqueeze(1)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-6, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01)

    def step() -> float:
        t = time.perf_counter()
        with torch.no_grad():
            logits = model(inputs, logits_to_keep=a.new).logits
            logp_all = torch.log_softmax(logits, dim=-1)
            old_logp = logp_all.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
            entropy = -(logp_all.exp() * logp_all).sum(-1)
            del entropy
        logits = model(inputs, logits_to_keep=a.new).logits
        logp = torch.log_softmax(logits, dim=-1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)
        ratio = torch.exp(logp - old_logp)
        pg = torch.maximum(-adv * ratio, -adv * torch.clamp(ratio, 1 - 0.2, 1 + 0.28))
        loss = (pg * mask).sum() / mask.sum()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return time.perf_counter() - t

    step()  # warm-up
    train = [step() for _ in range(2 * a.repeat)]
    print(
        json.dumps(
            {
                "gen_tokens_per_s": a.g * a.new / statistics.median(gen),
                "train_tokens_per_s": a.b * (p + a.new) / statistics.median(train),
                "train_step_s": statistics.median(train),
                "torch": torch.__version__,
                "transformers": transformers.__version__,
                "threads": threads,
            }
        )
    )


if __name__ == "__main__":
    main()
