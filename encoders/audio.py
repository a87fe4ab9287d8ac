"""Audio encoders: mono waveform of one segment -> log-mel -> CNN -> tokens.

Every encoder takes ``wave`` float32 ``(B, N)`` at its contract's sample rate and
returns ``(B, tokens, dim)``. The log-mel front end runs on the model's device; its
window and filterbank are rebuilt from the contract (non-persistent buffers), so
state dicts hold learned weights only.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
import torchaudio
from torch import Tensor, nn

from encoders.contracts import AudioContract


class LogMel(nn.Module):
    """Power mel spectrogram in dB: (B, N) -> (B, 1, T, n_mels), T = N // hop + 1.

    Slaney mel scale and norm with 10*log10(max(x, 1e-10)), as librosa and PANNs compute it.
    """

    def __init__(self, c: AudioContract) -> None:
        super().__init__()
        self.c = c
        self.register_buffer("window", torch.hann_window(c.win_length), persistent=False)
        fb = torchaudio.functional.melscale_fbanks(
            c.n_fft // 2 + 1, c.f_min, c.f_max, c.n_mels, c.sample_rate, norm="slaney", mel_scale="slaney"
        )
        self.register_buffer("fb", fb, persistent=False)  # (n_freqs, n_mels)

    def forward(self, wave: Tensor) -> Tensor:
        spec = torch.stft(
            wave.float(), self.c.n_fft, self.c.hop_length, self.c.win_length, self.window,
            center=True, pad_mode="reflect", return_complex=True,
        )  # (B, n_freqs, T)
        power = spec.real.square() + spec.imag.square()
        mel = torch.matmul(power.transpose(1, 2), self.fb)  # (B, T, n_mels)
        return (10.0 * torch.log10(mel.clamp_min(1e-10))).unsqueeze(1)  # (B, 1, T, n_mels)


class AudioEncoder(nn.Module):
    """Base: holds the contract and the log-mel front end."""

    contract: AudioContract

    def __init__(self, contract: AudioContract) -> None:
        super().__init__()
        self.contract = contract
        self.frontend = LogMel(contract)


def time_tokens(x: Tensor, tokens: int) -> Tensor:
    """(B, C, T', M') maps -> (B, tokens, C): mean over frequency, then over time slices."""
    x = x.mean(dim=3)  # (B, C, T')
    return F.adaptive_avg_pool1d(x, tokens).transpose(1, 2)


class SmallAudioCNN(AudioEncoder):
    """A small CNN from scratch over the log-mel image.

    wave (B, N) -> log-mel (B, 1, T, M) -> BN over mel bins -> 3 x [conv3x3-BN-ReLU (x convs_per_stage), avgpool 2]
    -> mean over frequency, ``tokens`` time slices -> Linear -> (B, tokens, dim)
    """

    def __init__(self, contract: AudioContract, width: int = 32, convs_per_stage: int = 1) -> None:
        super().__init__(contract)
        self.bn0 = nn.BatchNorm2d(contract.n_mels)
        chans = [1, width, 2 * width, 4 * width]
        blocks: list[nn.Module] = []
        for cin, cout in zip(chans[:-1], chans[1:]):
            for i in range(convs_per_stage):
                blocks += [nn.Conv2d(cin if i == 0 else cout, cout, 3, padding=1, bias=False),
                           nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]
            blocks.append(nn.AvgPool2d(2))
        self.features = nn.Sequential(*blocks)
        self.proj = nn.Linear(chans[-1], contract.dim)

    def forward(self, wave: Tensor) -> Tensor:
        x = self.frontend(wave)  # (B, 1, T, M)
        x = self.bn0(x.transpose(1, 3)).transpose(1, 3)  # normalise each mel bin
        x = self.features(x)  # (B, 4w, T/8, M/8)
        return self.proj(time_tokens(x, self.contract.tokens))  # (B, tokens, dim)


class ConvBlock(nn.Module):
    """PANNs' block: two 3x3 convs (no bias) with BN-ReLU, then average pooling."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.bn2 = nn.BatchNorm2d(out_channels)

    def forward(self, x: Tensor, pool: int) -> Tensor:
        x = F.relu_(self.bn1(self.conv1(x)))
        x = F.relu_(self.bn2(self.conv2(x)))
        return F.avg_pool2d(x, pool) if pool > 1 else x


class Cnn14(AudioEncoder):
    """PANNs Cnn14 with the official parameter names, so AudioSet checkpoints load.

    wave -> log-mel (B, 1, T, 64) -> bn0 over mel bins -> conv_block1..6 (64..2048 channels,
    2x2 average pooling except the last) -> mean over frequency -> max+mean over ``tokens``
    time slices -> relu(fc1) -> (B, tokens, 2048). ``fc_audioset`` (527 AudioSet classes) is
    kept so the official file loads strictly; ``audioset_logits`` uses it.
    ``width`` scales every channel count (1.0 is the official size; tests use less).
    """

    def __init__(self, contract: AudioContract, width: float = 1.0, classes: int = 527) -> None:
        super().__init__(contract)
        ch = [max(1, int(round(c * width))) for c in (64, 128, 256, 512, 1024, 2048)]
        self.bn0 = nn.BatchNorm2d(contract.n_mels)
        self.conv_block1 = ConvBlock(1, ch[0])
        self.conv_block2 = ConvBlock(ch[0], ch[1])
        self.conv_block3 = ConvBlock(ch[1], ch[2])
        self.conv_block4 = ConvBlock(ch[2], ch[3])
        self.conv_block5 = ConvBlock(ch[3], ch[4])
        self.conv_block6 = ConvBlock(ch[4], ch[5])
        self.fc1 = nn.Linear(ch[5], ch[5], bias=True)
        self.fc_audioset = nn.Linear(ch[5], classes, bias=True)

    def feature_maps(self, wave: Tensor) -> Tensor:
        x = self.frontend(wave)
        x = self.bn0(x.transpose(1, 3)).transpose(1, 3)
        blocks = (self.conv_block1, self.conv_block2, self.conv_block3, self.conv_block4,
                  self.conv_block5, self.conv_block6)
        for i, block in enumerate(blocks):
            x = F.dropout(block(x, pool=2 if i < 5 else 1), p=0.2, training=self.training)
        return x  # (B, 2048, T/32, M/32)

    def forward(self, wave: Tensor) -> Tensor:
        x = self.feature_maps(wave).mean(dim=3)  # (B, C, T')
        tokens = self.contract.tokens
        x = F.adaptive_max_pool1d(x, tokens) + F.adaptive_avg_pool1d(x, tokens)  # (B, C, tokens)
        x = F.dropout(x.transpose(1, 2), p=0.5, training=self.training)
        return F.relu_(self.fc1(x))  # (B, tokens, C)

    def audioset_logits(self, wave: Tensor) -> Tensor:
        """The official clip-level head: (B, 527) logits (apply a sigmoid for AudioSet scores)."""
        x = self.feature_maps(wave).mean(dim=3)
        x = x.max(dim=2).values + x.mean(dim=2)
        return self.fc_audioset(F.relu_(self.fc1(x)))


def small_cnn(*, dim: int = 128, sample_rate: int = 16_000, n_mels: int = 64, hop_ms: int = 20,
              tokens: int = 4, width: int = 16, convs_per_stage: int = 1) -> SmallAudioCNN:
    """Small CNN from scratch (16 kHz, 25 ms windows every ``hop_ms``, 64 mel bins; ~10 M MACs a second)."""
    contract = AudioContract(sample_rate, 512, 400 * sample_rate // 16_000, hop_ms * sample_rate // 1000,
                             n_mels, 50.0, sample_rate / 2, dim, tokens)
    return SmallAudioCNN(contract, width=width, convs_per_stage=convs_per_stage)


def cnn14(*, tokens: int = 2, width: float = 1.0) -> Cnn14:
    """PANNs Cnn14 as released for AudioSet: 32 kHz, 1024-point windows, hop 320, 64 mels, 50-14000 Hz."""
    contract = AudioContract(32_000, 1024, 1024, 320, 64, 50.0, 14_000.0, max(1, int(round(2048 * width))), tokens)
    return Cnn14(contract, width=width)


def cnn14_16k(*, tokens: int = 2, width: float = 1.0) -> Cnn14:
    """PANNs Cnn14_16k: 16 kHz, 512-point windows, hop 160, 64 mels, 50-8000 Hz."""
    contract = AudioContract(16_000, 512, 512, 160, 64, 50.0, 8000.0, max(1, int(round(2048 * width))), tokens)
    return Cnn14(contract, width=width)


# Keys of the official PANNs checkpoints that belong to the STFT / mel front end, which
# avfuse rebuilds with torch.stft and torchaudio's filterbank instead of loading.
PANNS_FRONTEND_PREFIXES = ("spectrogram_extractor.", "logmel_extractor.")
