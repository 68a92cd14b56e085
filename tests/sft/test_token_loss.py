# Copyright 2026 The videoseg-o3-verl authors. Licensed under the Apache License, Version 2.0.
"""The token part of the cold-start loss: digit- and action-weighted CE through verl's own SFT loss, the weight table
of the tokenizer, and the one-pass log-probs against verl's padded-path ``prepare_model_outputs``."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch

from videoseg_o3_verl.sft.config import SFTSettings
from videoseg_o3_verl.sft.token_loss import (
    padded_sequence_log_probs,
    token_log_probs,
    token_loss_weights,
    token_weight_table,
)


def _nested(rows, dtype=None):
    return torch.nested.as_nested_tensor([torch.tensor(r, dtype=dtype) for r in rows], layout=torch.jagged)


def _verl_sft_loss(log_probs, loss_mask):
    """verl's sft_loss on one micro-batch holding the whole batch (batch_num_tokens as verl computes it)."""
    from verl.utils import tensordict_utils as tu
    from verl.workers.utils.losses import sft_loss

    data = tu.get_tensordict(tensor_dict={"loss_mask": loss_mask}, non_tensor_dict={
        "dp_size": 1, "batch_num_tokens": float(loss_mask.values().sum()), "pad_mode": "no_padding"})
    loss, _ = sft_loss(config=None, model_output={"log_probs": log_probs}, data=data)
    return float(loss)


def test_digit_weighted_ce_hand_case():
    # vocab: id 1 = "7" (a digit), ids 0 and 2 = text. Sequence ids [0, 1, 2, 1]; loss_mask [0, 1, 1, 1]:
    # tokens 1, 2, 3 are trained (targets "7", text, "7"). verl aligns log_prob[t] with loss_mask[t + 1].
    ids = _nested([[0, 1, 2, 1]])
    mask = _nested([[0, 1, 1, 1]], dtype=torch.long)
    # log p of the targets: tokens 1, 2, 3 -> log_prob positions 0, 1, 2: ce = 1.0, 2.0, 4.0 (last position unused)
    log_probs = _nested([[-1.0, -2.0, -4.0, -9.0]])
    weights = token_loss_weights(ids, mask, torch.tensor([1.0, 5.0, 1.0]))
    assert weights.values().tolist() == [0.0, 5.0, 1.0, 5.0]
    # weighted mean: (5·1 + 1·2 + 5·4) / (5 + 1 + 5) = 27 / 11
    assert _verl_sft_loss(log_probs, weights) == pytest.approx(27 / 11, rel=1e-6)
    # weight 1: plain token mean (1 + 2 + 4) / 3, and the weights are exactly the mask
    plain = token_loss_weights(ids, mask, torch.ones(3))
    assert torch.equal(plain.values(), mask.values().float())
    assert _verl_sft_loss(log_probs, plain) == pytest.approx(7 / 3, rel=1e-6)
    assert _verl_sft_loss(log_probs, mask) == pytest.approx(7 / 3, rel=1e-6)


def test_token_weights_dense_layout_and_untrained_digits_stay_zero():
    weights = token_loss_weights(torch.tensor([[1, 0, 1]]), torch.tensor([[0, 1, 1]]), torch.tensor([1.0, 3.0]))
    assert weights.tolist() == [[0.0, 1.0, 3.0]]


def test_action_weighted_ce_hand_case(tiny_qwen25_path):
    # "Action: answer.</think><answer>…</RefSeg></answer>": the three tokens naming the action weigh 4, the rest 1
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_qwen25_path)
    text = "Action: answer.</think><answer>{}</answer>"
    ids = tokenizer(text)["input_ids"]
    table = token_weight_table(tokenizer, digit_weight=1.0, action_weight=4.0)
    weights = token_loss_weights(torch.tensor(ids), torch.ones(len(ids), dtype=torch.long), table)
    assert [tokenizer.decode([i]) for i, w in zip(ids, weights.tolist()) if w == 4.0] == [" answer", "<answer",
                                                                                          "answer"]
    assert sorted(set(weights.tolist())) == [1.0, 4.0]
    # through verl's loss: ce 1 on every token, 2 on the closing "answer" -> (sum of w·ce) / (sum of w)
    n = len(ids)
    ce = torch.ones(n)
    closing = n - 2  # "answer" of "</answer>": ids end with "></", "answer", ">"
    assert tokenizer.decode([ids[closing]]) == "answer"
    ce[closing] = 2.0
    log_probs = _nested([(-torch.roll(ce, -1)).tolist()])  # log_prob[t] scores token t + 1
    mask = _nested([[0] + [1] * (n - 1)], dtype=torch.long)  # the first token is never a target
    loss = _verl_sft_loss(log_probs, token_loss_weights(_nested([ids]), mask, table))
    # targets: tokens 1..n-1; weights 4 on the three action tokens (none of them is token 0), 1 on the other n - 4
    assert loss == pytest.approx((4 * 1 + 4 * 1 + 4 * 2 + (n - 4) * 1) / (12 + n - 4), rel=1e-6)


def test_weight_table_of_the_tiny_tokenizer_names_the_digits_and_the_actions(tiny_qwen25_path):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_qwen25_path)
    table = token_weight_table(tokenizer, digit_weight=5.0, action_weight=20.0)
    assert table.shape == (len(tokenizer),) and set(table.tolist()) == {1.0, 5.0, 20.0}

    def weighted(value):
        return sorted(tokenizer.decode([i]) for i in torch.nonzero(table == value).flatten().tolist())

    assert [t.strip() for t in weighted(5.0)] == list("0123456789")
    assert weighted(20.0) == [" answer", " select", "<answer", "<select", "answer", "select"]
    ids = tokenizer('{"start": 12, "keyframe": 3}')["input_ids"]
    assert [tokenizer.decode([i]) for i in ids if table[i] == 5.0] == ["1", "2", "3"]


def test_digit_and_action_weight_settings_are_validated():
    assert (SFTSettings().digit_weight, SFTSettings().action_weight) == (1.0, 1.0)
    with pytest.raises(ValueError, match=r"\[videoseg_o3_sft.digit_weight\]"):
        SFTSettings(digit_weight=0.0)
    with pytest.raises(ValueError, match=r"\[videoseg_o3_sft.action_weight\]"):
        SFTSettings(action_weight=-1.0)


def test_token_log_probs_hand_case():
    # logits [0, ln 3] -> probabilities 1/4, 3/4
    logits = torch.tensor([[0.0, math.log(3.0)], [0.0, math.log(3.0)]])
    out = token_log_probs(logits, torch.tensor([0, 1]))
    torch.testing.assert_close(out, torch.tensor([math.log(0.25), math.log(0.75)]))


def test_padded_log_probs_equal_verls_padded_path():
    from verl.utils import tensordict_utils as tu
    from verl.workers.engine.fsdp.transformer_impl import FSDPEngineWithLMHead

    from videoseg_o3_verl.sft.engine import _plain_log_probs

    lengths, vocab = [5, 3, 7], 11
    ids = torch.nested.as_nested_tensor([torch.randint(0, vocab, (n,)) for n in lengths], layout=torch.jagged)
    logits = torch.randn(3, 7, vocab, requires_grad=True)
    micro_batch = tu.get_tensordict(tensor_dict={"input_ids": ids},
                                    non_tensor_dict={"use_remove_padding": False, "pad_mode": "no_padding"})
    output = SimpleNamespace(logits=logits)
    output_args = {"temperature_is_one": True, "temperature": torch.ones(3),
                   "input_ids_rmpad_rolled": torch.roll(ids.values(), -1, 0)}
    assert _plain_log_probs(output, output_args, micro_batch)
    expected = FSDPEngineWithLMHead.prepare_model_outputs(None, output, output_args, micro_batch, None)["log_probs"]
    mine = padded_sequence_log_probs(logits, ids)
    torch.testing.assert_close(mine.values(), expected.values(), rtol=0, atol=1e-6)
    weights = torch.rand(mine.values().shape)
    grad_mine, = torch.autograd.grad((mine.values() * weights).sum(), logits)
    grad_verl, = torch.autograd.grad((expected.values() * weights).sum(), logits)
    torch.testing.assert_close(grad_mine, grad_verl, rtol=0, atol=1e-6)
    # anything verl computes beyond fp32 log-probs at temperature 1 stays on verl's path
    assert not _plain_log_probs(output, {**output_args, "temperature_is_one": False}, micro_batch)
    assert not _plain_log_probs(SimpleNamespace(logits=logits.bfloat16()), output_args, micro_batch)
    tu.assign_non_tensor(micro_batch, calculate_entropy=True)
    assert not _plain_log_probs(output, output_args, micro_batch)
