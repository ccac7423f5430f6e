"""What the reward audit says about custom reward components (kept apart from the audit's machinery).

A custom component (:class:`~tradeguard.env.CustomComponent`) is the user's code; the
audit cannot know its effect from its weight alone, only from its declaration and
from the optima it searches. This module gives each one its row in the component
table.
"""

from __future__ import annotations

from tradeguard.env import CustomComponent

__all__ = ["custom_effect"]


def custom_effect(component: CustomComponent) -> tuple[bool, str]:
    """Whether ``component`` can change the optimum, and why, in one line.

    Example:
        >>> from tradeguard.env import reward_component
        >>> custom_effect(reward_component(name="flat")(lambda step: 0.0))
        (True, 'custom, not potential-based: can change the optimum (the audit searches for markets where it does)')
    """
    if component.weight == 0.0:
        return False, "off"
    if component.potential_based:
        return True, (
            "custom, declared potential-based; episodes end with the position open, so Phi(end) "
            "still values the final position (Ng, Harada & Russell 1999 hold for a constant Phi(end))"
        )
    return True, "custom, not potential-based: can change the optimum (the audit searches for markets where it does)"
