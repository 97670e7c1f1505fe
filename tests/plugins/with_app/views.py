from django.shortcuts import render
from rest_framework.decorators import api_view
from rest_framework.response import Response


def hello(request):
    return render(request, "with_app/hello.html", {"name": "plugin page"})


@api_view(["GET"])
def status(request):
    return Response({"plugin": "with_app", "user": request.user.username})
