"""Names of training options that code besides validation checks (``apps.mlmodels.params``
validates them): importing this module needs no serializers."""

#: Sources that run the user's own code or model file: they need the permission to run
#: custom code (``apps.core.permissions.can_run_custom_code``).
CUSTOM_SOURCES = ("custom", "upload")
#: Solver options that only the tasks naming them in ``Task.solver_options`` take.
TASK_SOLVER_OPTIONS = ("class_weights", "dice_loss")
