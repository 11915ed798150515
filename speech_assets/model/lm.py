"""Word n-gram language model for CTC decoding: estimated here, written as ARPA, queried by KenLM.

    lm = NgramLM.fit(train_transcripts, order=3)
    lm.arpa()       # ARPA text, what flashlight's KenLM loads
    lm.words        # the lexicon: every word seen in training

Estimation is interpolated Kneser-Ney (one discount per order, Ney's
estimate D = n1 / (n1 + 2 n2)), written in ARPA's backoff form: a seen
n-gram carries its interpolated probability, its context's backoff weight
is the mass the discount freed, so KenLM's backoff recursion reproduces the
interpolation exactly.  Lower orders use continuation counts (how many
distinct words precede an n-gram) except n-grams that start with <s>,
which cannot be extended to the left and keep their raw counts.

The model only ever sees training-split transcripts: it is part of the
trained model (stored in the checkpoint), not knowledge of the test set.
No estimation library is used because the well-kept ones (KenLM's lmplz,
SRILM) are C++ tools outside PyPI; the query side is KenLM itself.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

BOS, EOS, UNK = "<s>", "</s>", "<unk>"


def _discount(counts: Counter) -> float:
    n1 = sum(1 for c in counts.values() if c == 1)
    n2 = sum(1 for c in counts.values() if c == 2)
    if n1 == 0:
        return 0.5
    return min(0.9, max(0.1, n1 / (n1 + 2 * n2)))


@dataclass
class NgramLM:
    order: int
    # per order n (1-based index n-1): {ngram tuple: (log10 prob, log10 backoff or None)}
    tables: list[dict[tuple[str, ...], tuple[float, float | None]]]
    n_sentences: int

    @property
    def words(self) -> list[str]:
        """The lexicon: every word with a unigram, sentence markers and <unk> excluded."""
        return sorted(g[0] for g in self.tables[0] if g[0] not in (BOS, EOS, UNK))

    @classmethod
    def fit(cls, sentences: Iterable[str], order: int = 3) -> "NgramLM":
        if order < 1:
            raise ValueError(f"order must be >= 1, got {order}")
        raw: list[Counter] = [Counter() for _ in range(order)]
        n_sent = 0
        for s in sentences:
            words = s.split()
            if not words:
                continue
            n_sent += 1
            toks = [BOS] + words + [EOS]
            for n in range(1, order + 1):
                for i in range(len(toks) - n + 1):
                    raw[n - 1][tuple(toks[i : i + n])] += 1
        if n_sent == 0:
            raise ValueError("no sentences to fit a language model on")

        # adjusted counts: raw for the top order and for n-grams starting with <s>,
        # continuation counts (distinct left neighbours) otherwise
        adjusted: list[Counter] = [Counter() for _ in range(order)]
        adjusted[order - 1] = Counter(raw[order - 1])
        for n in range(order - 1, 0, -1):
            left = Counter(g[1:] for g in raw[n])  # each distinct (v, *g) counted once
            adj = adjusted[n - 1]
            for g, c in raw[n - 1].items():
                adj[g] = c if g[0] == BOS else left.get(g, 0)

        tables: list[dict] = [dict() for _ in range(order)]
        vocab = [g[0] for g in raw[0]] + ([UNK] if (UNK,) not in raw[0] else [])

        # unigrams: discounted continuation counts interpolated with uniform over the vocabulary
        uni = {g: c for g, c in adjusted[0].items() if g != (BOS,)}
        d = _discount(Counter(uni))
        total = sum(uni.values())
        freed = d * len(uni) / total
        prob1: dict[tuple[str, ...], float] = {}
        for w in vocab:
            if w == BOS:
                continue
            g = (w,)
            p = max(uni.get(g, 0) - d, 0) / total + freed / (len(vocab) - 1)  # <s> gets no mass
            prob1[g] = p
        probs: list[dict[tuple[str, ...], float]] = [prob1]

        # higher orders, interpolated with the order below
        for n in range(2, order + 1):
            counts = adjusted[n - 1]
            d = _discount(counts)
            ctx_total: dict[tuple[str, ...], int] = defaultdict(int)
            ctx_types: dict[tuple[str, ...], int] = defaultdict(int)
            for g, c in counts.items():
                ctx_total[g[:-1]] += c
                ctx_types[g[:-1]] += 1
            pn: dict[tuple[str, ...], float] = {}
            for g, c in counts.items():
                h = g[:-1]
                gamma = d * ctx_types[h] / ctx_total[h]
                pn[g] = max(c - d, 0) / ctx_total[h] + gamma * _backoff_prob(probs, g[1:])
            probs.append(pn)
            # backoff weight of each context = the mass its discount freed
            for h in ctx_total:
                bow = math.log10(d * ctx_types[h] / ctx_total[h])
                prev = tables[n - 2].get(h)
                tables[n - 2][h] = (prev[0] if prev else None, bow)  # prob filled below

        for n, pn in enumerate(probs, start=1):
            table = tables[n - 1]
            for g, p in pn.items():
                bow = table.get(g, (None, None))[1]
                table[g] = (math.log10(p), bow)
            # contexts that have no probability of their own (only <s> as a unigram)
            for g in [g for g, (lp, _) in table.items() if lp is None]:
                table[g] = (-99.0, table[g][1])
        if (BOS,) not in tables[0]:
            tables[0][(BOS,)] = (-99.0, None)
        return cls(order=order, tables=tables, n_sentences=n_sent)

    @classmethod
    def from_arpa(cls, text: str) -> "NgramLM":
        """Parse ARPA text (as written by ``arpa``) back into a model."""
        tables: list[dict] = []
        n = 0
        for line in text.splitlines():
            line = line.strip()
            if not line or line.startswith("ngram ") or line in ("\\data\\", "\\end\\"):
                continue
            if line.startswith("\\") and line.endswith("-grams:"):
                n = int(line[1:].split("-")[0])
                tables.append({})
                continue
            if n == 0:
                raise ValueError(f"not an ARPA file: unexpected line {line[:60]!r}")
            parts = line.split("\t")
            if len(parts) not in (2, 3):
                raise ValueError(f"bad ARPA line {line[:60]!r}")
            g = tuple(parts[1].split(" "))
            if len(g) != n:
                raise ValueError(f"{n}-gram section holds {line[:60]!r}")
            tables[-1][g] = (float(parts[0]), float(parts[2]) if len(parts) == 3 else None)
        if not tables or (UNK,) not in tables[0]:
            raise ValueError("ARPA text has no unigrams with <unk>")
        return cls(order=len(tables), tables=tables, n_sentences=0)  # the sentence count is not in ARPA

    def log10_prob(self, word: str, context: tuple[str, ...] = ()) -> float:
        """log10 P(word | context) by the ARPA backoff recursion (what KenLM computes)."""
        context = tuple(context)[-(self.order - 1) :] if self.order > 1 else ()
        g = context + (word,)
        bow = 0.0
        while g:
            entry = self.tables[len(g) - 1].get(g)
            if entry is not None:
                return entry[0] + bow
            ctx = self.tables[len(g) - 2].get(g[:-1]) if len(g) > 1 else None
            bow += (ctx[1] or 0.0) if ctx else 0.0
            g = g[1:]
        return self.tables[0][(UNK,)][0] + bow

    def arpa(self) -> str:
        lines = ["", "\\data\\"]
        lines += [f"ngram {n}={len(t)}" for n, t in enumerate(self.tables, start=1)]
        for n, table in enumerate(self.tables, start=1):
            lines += ["", f"\\{n}-grams:"]
            for g in sorted(table):
                lp, bow = table[g]
                line = f"{lp:.6f}\t{' '.join(g)}"
                if bow is not None and n < self.order:
                    line += f"\t{bow:.6f}"
                lines.append(line)
        lines += ["", "\\end\\", ""]
        return "\n".join(lines)


def _backoff_prob(probs: list[dict], g: tuple[str, ...]) -> float:
    """Interpolated probability of a lower-order n-gram during estimation (unseen -> its own backoff)."""
    table = probs[len(g) - 1]
    if g in table:
        return table[g]
    # unseen at this order while estimating the order above: only possible for
    # unigram-level unknowns, which the uniform floor covers
    return probs[0].get((g[-1],), probs[0][(UNK,)])
