"""Spot and preemptible machines: hear the cloud's notice and save within the time it leaves.

`PreemptionNotice` is a trigger: pass it in a job's ``triggers=``. It finds which cloud
(AWS, Google Cloud, Azure) the job runs on, watches that provider's notice in the
background, and aborts the job with the notice's time as the save's budget. Nothing beyond
the standard library is needed.
"""

from resumable.cloud._notice import Notice
from resumable.cloud._trigger import PreemptionNotice

__all__ = ["Notice", "PreemptionNotice"]
