"""How an LSTM works: the gate equations and how each heatmap of the Explain tab maps to them."""

from __future__ import annotations

import gradio as gr

from ..names import DELTA_TOLERANCE

LATEX = [{"left": "$$", "right": "$$", "display": True}, {"left": "$", "right": "$", "display": False}]

TEXT = r"""
## How an LSTM works

An LSTM reads a text one word at a time. At word $t$ it takes the word vector $x_t$ and its own
previous output $h_{t-1}$, and updates a **cell state** $C_t$, its memory. Three gates decide what
happens to that memory; each is a sigmoid $\sigma$, so every unit of a gate lies between 0 (closed)
and 1 (open):

$$i_t = \sigma(W_i x_t + U_i h_{t-1} + b_i) \qquad \text{input gate: how much new content is written}$$

$$f_t = \sigma(W_f x_t + U_f h_{t-1} + b_f) \qquad \text{forget gate: how much old memory is kept}$$

$$o_t = \sigma(W_o x_t + U_o h_{t-1} + b_o) \qquad \text{output gate: how much memory is shown}$$

$$\tilde{C}_t = \tanh(W_C x_t + U_C h_{t-1} + b_C) \qquad \text{candidate: the new content}$$

$$C_t = f_t \odot C_{t-1} + i_t \odot \tilde{C}_t$$

$$h_t = o_t \odot \tanh(C_t)$$

$\odot$ multiplies unit by unit. A unit whose forget gate stays near 1 while its input gate stays
near 0 carries its memory unchanged across any number of words; that is how an LSTM keeps a token
in mind to the end of a long text, where a vanilla RNN, $h_t = \tanh(W x_t + U h_{t-1} + b)$,
loses it (the long-range task in the Examples tab shows both).

**A correction to the design notes**: they give $h_t = o_t \odot \tanh(\tilde{C}_t)$. The output
reads the *cell state* $C_t$, not the candidate $\tilde{C}_t$; with the candidate, nothing stored in
memory would ever reach the output and the LSTM could remember nothing beyond the current word.

### What each heatmap shows

In the Explain tab each heatmap has one row per word (first word at the top) and one column per
chosen unit, and each has its own colour bar: the gates, which lie between 0 and 1, on a sequential
scale from white (closed) to dark (open); the candidate, cell and hidden states on a diverging scale
centred on zero (red positive, blue negative), so a cell state of several units does not wash out
the others. Hovering a cell shows the word, the unit and the value.

| heatmap | symbol | range | read it as |
|---|---|---|---|
| input | $i_t$ | 0 to 1 | how much of the candidate this word writes into memory |
| forget | $f_t$ | 0 to 1 | how much of the memory survives this word (1: all of it) |
| candidate | $\tilde{C}_t$ | -1 to 1 | what this word would write |
| output | $o_t$ | 0 to 1 | how much of the memory is exposed as $h_t$ |
| cell | $C_t$ | unbounded | the memory itself, after this word |
| hidden | $h_t$ | -1 to 1 | what the next layer, or the classifier, reads |

The values are recomputed from the trained model's own `nn.LSTM` weights (PyTorch stacks
$W$ as `weight_ih`, $U$ as `weight_hh` in the order $i, f, \tilde{C}, o$ and adds two biases), so
they are exactly what the model computed. A **bidirectional** model has a second, backward direction
that reads the text from its end: its row for word $t$ summarises words $t$ to the end. In a
**stacked** model, layer 0 reads the word vectors and layer $k$ reads layer $k-1$'s $h_t$.

*Unit ordering*: "most varying" picks the units whose hidden state changes most over the sentence;
"largest push" ranks the last layer's units by how much they move the target class's score
(the output weight, centred over classes, times the pooled $h$: an exact split of the logit);
or type unit numbers yourself.

A **GRU** run shows its reset gate $r_t$, update gate $z_t$, candidate
$n_t = \tanh(W_n x_t + b_n + r_t \odot (U_n h_{t-1} + b'_n))$ and $h_t = (1 - z_t) \odot n_t + z_t \odot h_{t-1}$;
a vanilla **RNN** has only $h_t$.

### The other views

- **Attributions** say which words drove the decision for the target class. Integrated Gradients
  compares the text with an all-padding baseline; its scores add up to the change in the class
  score, and the *delta* says by how much they miss (flagged above {delta_tolerance}). Each method is
  coloured on its own scale: compare which words they rank first, not the shades.
- **Faithfulness** (ERASER): *comprehensiveness* is the drop in the class probability when the
  top-ranked words are removed (higher: the method found what mattered); *sufficiency* the drop
  when only they are kept (lower: they suffice). A random ordering is the yardstick.
- **Decision path**: the class probabilities after each prefix of the text, so you see the word
  where the model changed its mind.
""".replace("{delta_tolerance}", f"{DELTA_TOLERANCE:.0%}")


def build() -> None:
    gr.Markdown(TEXT, latex_delimiters=LATEX, elem_id="about-text")
