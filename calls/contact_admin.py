"""The contact page's parts that read or book calls: its history, "Call now" and "Book a call
back". Added on a subclass of the contact admin, as the campaign pages in calls.admin are,
because `calls` may import `contacts` but never the reverse (STYLE.md)."""

from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext as _

from calls.booking.scheduling import call_now
from calls.reports.history import contact_history
from contacts.admin import ContactAdmin, contact_tool
from contacts.models import Contact


class ContactBackOfficeAdmin(ContactAdmin):
    def may_book(self, request) -> bool:
        return request.user.has_perm("calls.add_scheduledcall")

    def contact_tools(self, request, contact) -> list[dict]:
        tools = []
        if self.may_book(request) and contact.state not in Contact.FINAL_STATES:
            tools.append(contact_tool("call-now", _("Call now"), "admin:contact_call_now", contact))
        if self.may_book(request):
            book = {
                "id": "book-call",
                "label": _("Book a call back"),
                "url": reverse("admin:calls_scheduledcall_add") + f"?contact={contact.pk}",
                "post": False,
            }
            tools.append(book)
        return tools + super().contact_tools(request, contact)

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("<int:object_id>/call-now/", view(self.call_now_view), name="contact_call_now"),
        ] + super().get_urls()

    def call_now_view(self, request, object_id):
        if request.method != "POST":
            return self._back(get_object_or_404(Contact, pk=object_id))
        contact = self._contact_for(
            request,
            object_id,
            lambda c: self.may_book(request) and self.has_view_permission(request, c),
        )
        try:
            call = call_now(contact=contact, now=timezone.now(), by=request.user)
        except ValidationError as exc:
            self.message_user(request, _("Not called: %s") % " ".join(exc.messages), messages.ERROR)
        else:
            link = reverse("admin:calls_scheduledcall_change", args=[call.pk])
            text = _("Booked for now: the dialler places the call at its next tick.")
            see = _("See the booked call")
            message = format_html('{} <a href="{}">{}</a>', text, link, see)
            self.message_user(request, message, messages.SUCCESS)
        return self._back(contact)

    def contact_page_context(self, request, contact) -> dict:
        context = super().contact_page_context(request, contact)
        if self.has_view_permission(request, contact):
            context["history"] = contact_history(contact, user=request.user)
        return context


admin.site.unregister(Contact)
admin.site.register(Contact, ContactBackOfficeAdmin)
