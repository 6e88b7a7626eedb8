"""Clients: institutions (`institution`, with their KYC state), their chat groups, their contacts and their product
accounts (`client_account`, 资管产品/产品户)."""
from __future__ import annotations

from sqlmodel import Session, select

from otcdesk.app.models import ChatGroup, ClientAccount, ClientContact, Institution


class ClientRepository:
    """Which institution stands behind a chat or a sender, and the records that say so."""

    def __init__(self, session: Session):
        self.session = session

    def institution_of(self, channel: str, chat_id: str, sender_id: str) -> Institution | None:
        """The sender's institution: their contact record first, else the chat group's owner."""
        contact = self.session.exec(select(ClientContact).where(ClientContact.channel == channel,
                                                                ClientContact.sender_id == sender_id)).first()
        inst_id = contact.institution_id if contact else None
        if inst_id is None:
            group = self.group(channel, chat_id)
            inst_id = group.institution_id if group else None
        return self.session.get(Institution, inst_id) if inst_id else None

    def institution_named(self, name: str) -> Institution | None:
        return self.session.exec(select(Institution).where(Institution.name == name)).first()

    def institution(self, institution_id: int) -> Institution | None:
        return self.session.get(Institution, institution_id)

    def institution_by_uscc(self, uscc: str) -> Institution | None:
        return self.session.exec(select(Institution).where(Institution.uscc == uscc)).first()

    def set_kyc(self, inst: Institution, kyc_status: str, can_trade: bool | None = None, **changes) -> None:
        """Mirror the onboarding machine's state (and whether quoting is open) onto the institution."""
        inst.kyc_status = kyc_status
        if can_trade is not None:
            inst.can_trade = can_trade
        for key, value in changes.items():
            setattr(inst, key, value)
        self.session.add(inst)
        self.session.flush()

    def groups_of(self, institution_id: int) -> list[ChatGroup]:
        return list(self.session.exec(select(ChatGroup).where(ChatGroup.institution_id == institution_id)
                                      .order_by(ChatGroup.id)))

    def institutions(self) -> list[Institution]:
        """Every institution, by name."""
        return list(self.session.exec(select(Institution).order_by(Institution.name)))

    def add_institution(self, name: str, kyc_status: str, can_trade: bool) -> Institution:
        inst = Institution(name=name, kyc_status=kyc_status, can_trade=can_trade)
        self.session.add(inst)
        self.session.flush()
        return inst

    def group(self, channel: str, group_id: str) -> ChatGroup | None:
        return self.session.exec(select(ChatGroup).where(ChatGroup.channel == channel,
                                                         ChatGroup.group_id == group_id)).first()

    def add_group(self, channel: str, group_id: str, institution_id: int | None) -> ChatGroup:
        group = ChatGroup(channel=channel, group_id=group_id, institution_id=institution_id)
        self.session.add(group)
        return group

    def add_contact(self, channel: str, sender_id: str, display_name: str, institution_id: int | None) -> ClientContact:
        contact = ClientContact(channel=channel, sender_id=sender_id, display_name=display_name,
                                institution_id=institution_id)
        self.session.add(contact)
        return contact

    def accounts(self, institution_id: int, *, active: bool = True) -> list[ClientAccount]:
        """The institution's product accounts in the order they were opened (the numbers a client picks by)."""
        q = select(ClientAccount).where(ClientAccount.institution_id == institution_id)
        if active:
            q = q.where(ClientAccount.active == True)  # noqa: E712 (SQL, not Python truth)
        return list(self.session.exec(q.order_by(ClientAccount.id)))

    def add_account(self, institution_id: int, name: str) -> ClientAccount:
        account = ClientAccount(institution_id=institution_id, name=name)
        self.session.add(account)
        self.session.flush()
        return account
