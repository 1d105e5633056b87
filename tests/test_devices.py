"""Device and recurrent-kernel choice, decided by the device asked for, never by probing it."""

from __future__ import annotations

import pytest
import torch

from lstm_demo.devices import resolve_device, resolve_packing


def test_devices_and_packing_resolve():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_packing("auto") == "padded"
    assert resolve_packing("auto", torch.device("cpu")) == "padded"
    # decided by the device, not by probing it
    assert resolve_packing("auto", torch.device("cuda")) == "paired"
    assert resolve_packing("packed", torch.device("cuda")) == "packed"
    assert resolve_packing("padded", torch.device("cuda")) == "padded"  # asked for, kept
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA GPU"):
            resolve_device("cuda")
