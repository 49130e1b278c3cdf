/**
 * What a device shows and says. The state machine decides; drivers (simulated, johnny-five,
 * serial kiosk board) implement this interface. Texts come in Vietnamese and English.
 */
import type { AckState } from '../../protocol/index.js'

/**
 * `blinking`: the press reached the police system; `steady`: a person acknowledged it;
 * `flash` (a fast blink, for a moment only): a self-test got through. Only the first three are
 * an alarm's state; `flash` is a cue, and the state is shown again after it.
 */
export type LedMode = 'off' | 'blinking' | 'steady' | 'flash'

export interface Bilingual {
  vi: string
  en: string
}

/** Spoken/beeped only by devices that are not silent: the alarm's states, and a self-test that got through. */
export type SoundCue = Extract<AckState, 'received' | 'acknowledged' | 'dispatched' | 'resolved' | 'cancelled'> | 'self_test_ok'

export type ScreenMessage =
  | { kind: 'ticket', ticketId: string, text: Bilingual }
  | { kind: 'announcement', id: string, title: string, body: string, lang: string, expiresAt?: string, text: Bilingual }
  /** The announcement `id` is over (expired, withdrawn or cleared): the screen goes back to its idle page. */
  | { kind: 'announcement_cleared', id: string }
  | { kind: 'status', text: Bilingual }

export interface DeviceOutputs {
  led(mode: LedMode): void
  /** Buzzer or voice; never called for a silent device. */
  sound?(cue: SoundCue, text: Bilingual): void
  /** A kiosk screen; devices without one leave it out. */
  screen?(message: ScreenMessage): void
}

export const SPOKEN: Readonly<Record<SoundCue, Bilingual>> = Object.freeze({
  received: { vi: 'Đã nhận tín hiệu cầu cứu.', en: 'Your SOS has been received.' },
  acknowledged: { vi: 'Công an phường đã tiếp nhận, đang đến hỗ trợ.', en: 'Ward police acknowledged. Help is coming.' },
  dispatched: { vi: 'Lực lượng hỗ trợ đang trên đường đến.', en: 'Help is on the way.' },
  resolved: { vi: 'Sự việc đã được xử lý.', en: 'The case has been resolved.' },
  cancelled: { vi: 'Đã hủy báo động.', en: 'Alarm cancelled.' },
  self_test_ok: { vi: 'Kiểm tra định kỳ: thiết bị hoạt động tốt.', en: 'Self-test passed: this device works.' }
})

export const SCREEN_TEXT = {
  ticket: (ticketId: string): Bilingual => ({
    vi: `Đã gửi phản ánh. Mã phiếu của bạn: ${ticketId}`,
    en: `Report sent. Your ticket: ${ticketId}`
  }),
  reportSent: (): Bilingual => ({ vi: 'Đang gửi phản ánh…', en: 'Sending your report…' }),
  announcement: (title: string): Bilingual => ({ vi: `Thông báo: ${title}`, en: `Announcement: ${title}` }),
  rejected: (reason?: string): Bilingual => ({
    vi: `Không gửi được, vui lòng thử lại hoặc gọi 113.${reason ? ` (${reason})` : ''}`,
    en: `Could not send; please retry or call 113.${reason ? ` (${reason})` : ''}`
  }),
  offline: (): Bilingual => ({ vi: 'Mất kết nối, đang thử lại. Tín hiệu sẽ được gửi khi có mạng.', en: 'Offline, retrying. Your request will be sent when back online.' })
}

/** Outputs that only remember: the simulator's devices and tests read them back. */
export class RecordedOutputs implements DeviceOutputs {
  ledMode: LedMode = 'off'
  readonly ledHistory: LedMode[] = []
  readonly sounds: SoundCue[] = []
  readonly screens: ScreenMessage[] = []

  led (mode: LedMode): void {
    this.ledMode = mode
    this.ledHistory.push(mode)
  }

  sound (cue: SoundCue): void {
    this.sounds.push(cue)
  }

  screen (message: ScreenMessage): void {
    this.screens.push(message)
  }
}
