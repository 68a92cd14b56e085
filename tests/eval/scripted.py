# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""A policy that replies from a script: real tokenizer, processor and hidden states, no sampling."""

from __future__ import annotations

from videoseg_o3_verl.eval.policy import Generation, HFPolicy


class ScriptedPolicy:
    """Replies with scripted turns (tokenised by the real tokenizer); hidden states from the real HF policy."""

    def __init__(self, hf: HFPolicy, turns: list[str]):
        self.hf, self.turns, self.calls = hf, list(turns), []

    def generate(self, messages, images, max_new_tokens):
        inputs = self.hf._inputs(messages, images)
        reply = self.turns[len(self.calls) % len(self.turns)]
        ids = self.hf.tokenizer.encode(reply, add_special_tokens=False)
        ids.append(self.hf.tokenizer.convert_tokens_to_ids("<|im_end|>"))
        self.calls.append(list(messages))
        text = self.hf.tokenizer.decode(ids, skip_special_tokens=False).strip()
        return Generation(text=text, prompt_ids=inputs["input_ids"][0].tolist(), token_ids=ids, images=list(images),
                          messages=list(messages))

    def seg_hidden(self, generation):
        return self.hf.seg_hidden(generation)

    def turn_seg_hiddens(self, generation):
        return self.hf.turn_seg_hiddens(generation)
