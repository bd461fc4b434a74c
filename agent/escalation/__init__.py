"""Stage 5, escalation: triggers -> a wake of the larger model -> a finding.

``policy.py`` decides in sample time which triggers wake the model (pure, in the pipeline);
``context.py`` gathers what memory knows about the incident; ``diagnosis.py`` names the cause
and culprit (deterministic: the ``wake.done`` event); ``redact.py`` is the one door to a
backend; ``prompt.py`` turns the diagnosis into the model's task and checks its answer;
``runner.py`` and ``child.py`` run the model in a child process; ``escalator.py`` ties them.
"""
