"""How a calibration (what backend ``auto`` decided from) is shown: one table and a few lines."""

from __future__ import annotations

from rich.table import Table

from embedlab.engine.calibration import Calibration


def render_calibration(calibration: Calibration) -> Table:
    """One row per candidate backend: proven or not, worst cosine, load time, ms per calibration shape."""
    table = Table(title=f"backend auto: calibration {calibration.key}")
    labels = [f"{label}\\n{batch}x{seq}" for label, batch, seq in calibration.shapes]
    for column in ("backend", "cos min", "load s", *labels, "note"):
        table.add_column(column, justify="left" if column in ("backend", "note") else "right")
    chosen = {calibration.decision.small, calibration.decision.large}
    for row in calibration.table():
        name = f"{row['backend']} *" if row["backend"] in chosen else row["backend"]
        if not row["available"]:
            table.add_row(name, "-", "-", *["-" for _ in labels], row["note"])
            continue
        cosine = "-" if row["cosine_min"] is None else f"{row['cosine_min']:.6f}"
        if row["cosine_min"] is not None and not row["proven"]:
            cosine += " (fails)"
        times = ["-" if row[label] is None else f"{row[label]:.2f} ms" for label, _, _ in calibration.shapes]
        table.add_row(name, cosine, f"{row['load_s']:.2f}", *times, row["note"])
    return table


def calibration_lines(calibration: Calibration) -> list[str]:
    """What ``auto`` runs and why, the machine it was measured on, and where it is cached."""
    facts = calibration.facts
    summary = calibration.summary()
    lines = [
        f"auto -> {summary['chosen']}: {summary['reason']}",
        f"measured on {facts.get('cpu', '?')}, threads {facts.get('threads') or 'all cores'}, device "
        f"{facts.get('device', '?')}, in {calibration.seconds:.1f} s; reference {calibration.reference}, "
        "quality-proven = cosine >= 0.9999 with it on every sample text (* = chosen)",
    ]
    if calibration.fallback:
        lines.append("no calibration could run: auto uses a safe exact backend (see the reason above)")
    return lines
