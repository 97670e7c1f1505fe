from rest_framework.routers import SimpleRouter

from apps.evaluations.api import views

router = SimpleRouter()
router.register("evaluations", views.EvaluationViewSet, basename="evaluation")

urlpatterns = router.urls
