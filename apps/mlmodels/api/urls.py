from rest_framework.routers import SimpleRouter

from apps.mlmodels.api import views

router = SimpleRouter()
router.register("models", views.TrainedModelViewSet, basename="model")

urlpatterns = router.urls
