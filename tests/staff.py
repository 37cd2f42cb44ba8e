"""A staff user holding exactly some permissions, logged in to the admin (the pages check the
same permissions as the API)."""

from django.contrib.auth.models import Permission


def staff_client(client, django_user_model, *perms, username="narrow"):
    user = django_user_model.objects.create_user(username, password="pw", is_staff=True)
    for perm in perms:
        app_label, codename = perm.split(".")
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )
    client.force_login(user)
    return client
